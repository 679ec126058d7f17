import Foundation

/// Files under `Tests/Fixtures`, found relative to this source file so tests run from any
/// working directory. Tests never read outside the repository.
enum Fixtures {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent() // Support
        .deletingLastPathComponent() // MisalignCoreTests
        .deletingLastPathComponent() // Tests
        .appendingPathComponent("Fixtures")

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// A file of the repository itself (`Demo/demo.yaml`), relative to its top folder.
    static func repo(_ relative: String) -> URL {
        root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(relative)
    }

    /// Every Swift file of the library's targets (`Sources/Misalign*`, not the CLI and not the
    /// testing scaffolding), for tests that read the sources.
    static func librarySources() throws -> [URL] {
        let sources = repo("Sources")
        var out: [URL] = []
        for dir in try FileManager.default.contentsOfDirectory(atPath: sources.path).sorted()
        where dir.hasPrefix("Misalign") && dir != "MisalignCLI" && dir != "MisalignTesting" {
            let files = FileManager.default.enumerator(at: sources.appendingPathComponent(dir), includingPropertiesForKeys: nil)
            while let url = files?.nextObject() as? URL {
                if url.pathExtension == "swift" { out.append(url) }
            }
        }
        return out
    }

    /// A fresh empty directory under the system temp folder, removed by the caller's `defer`.
    static func temporaryDirectory(_ label: String = "misalign-test") -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}
