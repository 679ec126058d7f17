import Testing
import Foundation
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

/// `RunStore` owns the run store's schema: nothing outside `RunStore*.swift` (and the two
/// files that own the SQLite wrapper and the verdict cache's table) holds SQL, and only the
/// wrapper calls SQLite.
@Suite struct StoreSchemaOwnershipTests {
    static let root = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()

    /// Files allowed to hold SQL: the run store's own, the wrapper, the verdict cache's table.
    static func ownsSQL(_ relative: String) -> Bool {
        let name = (relative as NSString).lastPathComponent
        return (relative.hasPrefix("Sources/MisalignPipeline/") && name.hasPrefix("RunStore") && name.hasSuffix(".swift"))
            || relative == "Sources/MisalignIO/SQLiteDatabase.swift" || relative == "Sources/MisalignJudge/VerdictCache.swift"
    }

    /// Every Swift file under Sources/, as (path relative to the package root, code lines:
    /// comment lines left out, so a doc comment may name a statement).
    static func sources() throws -> [(path: String, lines: [(Int, String)])] {
        let base = root.appendingPathComponent("Sources")
        guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { return [] }
        var out: [(String, [(Int, String)])] = []
        for case let url as URL in walker where url.pathExtension == "swift" {
            let relative = "Sources/" + url.path.dropFirst(base.path.count + 1)
            let text = try String(contentsOf: url, encoding: .utf8)
            let lines = text.components(separatedBy: "\n").enumerated().map { ($0.offset + 1, $0.element) }
                .filter { !$0.1.trimmingCharacters(in: .whitespaces).hasPrefix("//") }
            out.append((relative, lines))
        }
        return out.sorted { $0.0 < $1.0 }
    }

    @Test func noSQLOutsideTheStoreAndTheWrapper() throws {
        let files = try Self.sources()
        #expect(files.count > 100, "found the package's sources")
        #expect(files.contains { $0.path == "Sources/MisalignReport/ReportFromRun.swift" })
        let statements = ["SELECT ", "INSERT ", "UPDATE ", "DELETE FROM", "CREATE TABLE", "PRAGMA "]
        var offenders: [String] = []
        for f in files where !Self.ownsSQL(f.path) {
            for (n, line) in f.lines {
                if let s = statements.first(where: { line.contains($0) }) { offenders.append("\(f.path):\(n) holds `\(s.trimmingCharacters(in: .whitespaces))`") }
            }
        }
        #expect(offenders.isEmpty, "SQL belongs in RunStore (Sources/MisalignPipeline/RunStore+<Area>.swift), returning typed records:\n\(offenders.joined(separator: "\n"))")
        // The scan sees SQL where it is: the store's files hold it.
        #expect(files.filter { Self.ownsSQL($0.path) }.contains { $0.lines.contains { $0.1.contains("SELECT ") } })
    }

    @Test func onlyTheWrapperCallsSQLite() throws {
        var offenders: [String] = []
        for f in try Self.sources() where f.path != "Sources/MisalignIO/SQLiteDatabase.swift" {
            for (n, line) in f.lines where line.contains("import CSQLite") || line.contains("sqlite3_") {
                offenders.append("\(f.path):\(n)")
            }
        }
        #expect(offenders.isEmpty, "SQLite is wrapped once (MisalignIO's SQLiteDatabase): \(offenders)")
        // Package.swift: CSQLite is a dependency of MisalignIO only.
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let users = manifest.components(separatedBy: "\n").filter { $0.contains("\"CSQLite\"") && !$0.contains("name: \"CSQLite\"") }
        #expect(users.count == 1 && users[0].contains("name: \"MisalignIO\""), "\(users)")
    }
}
