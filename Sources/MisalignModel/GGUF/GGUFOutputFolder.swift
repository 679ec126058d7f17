import Foundation
import MisalignIO
#if canImport(Glibc)
import Glibc
#endif

/// A model folder written atomically: files go into a temporary folder beside the target,
/// which `commit` renames into place (moving an old folder aside first, then deleting it), so a
/// reader or a crash sees the old folder or the complete new one, never a half-written one.
final class OutputFolder {
    let target: URL
    let temporary: URL
    private var committed = false

    /// Refuses a target that exists and is not an empty folder unless `overwrite`; creates the
    /// temporary folder.
    init(_ target: URL, overwrite: Bool) throws {
        let fm = FileManager.default
        let target = target.standardizedFileURL
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: target.path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw FileError.cannotWrite(path: target.path, reason: "it is a file; name a folder to import into") }
            let entries = (try? fm.contentsOfDirectory(atPath: target.path)) ?? []
            if !entries.isEmpty && !overwrite { throw GGUFError.outputNotEmpty(path: target.path) }
        }
        let parent = target.deletingLastPathComponent()
        do { try fm.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw FileError.cannotWrite(path: parent.path, reason: error.localizedDescription)
        }
        self.target = target
        temporary = parent.appendingPathComponent(".\(target.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do { try fm.createDirectory(at: temporary, withIntermediateDirectories: false) } catch {
            throw FileError.cannotWrite(path: temporary.path, reason: error.localizedDescription)
        }
    }

    /// Writes `value` as JSON (pretty enough to read: one top-level key per line) into the folder.
    func write(_ value: JSONValue, to name: String) throws {
        var text = ""
        if let o = value.objectValue {
            text = "{\n" + o.pairs.map { "  " + JSONValue.string($0).serialized() + ": " + $1.serialized() }.joined(separator: ",\n") + "\n}\n"
        } else {
            text = value.serialized() + "\n"
        }
        try AtomicFile.write(Data(text.utf8), to: temporary.appendingPathComponent(name))
    }

    /// Renames the temporary folder to the target.
    func commit() throws {
        let fm = FileManager.default
        var old: URL?
        if fm.fileExists(atPath: target.path) {
            let aside = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).old-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            guard rename(target.path, aside.path) == 0 else {
                throw FileError.cannotWrite(path: target.path, reason: "cannot move the old folder aside: \(String(cString: strerror(errno)))")
            }
            old = aside
        }
        guard rename(temporary.path, target.path) == 0 else {
            let reason = String(cString: strerror(errno))
            if let old { _ = rename(old.path, target.path) }
            throw FileError.cannotWrite(path: target.path, reason: "rename: \(reason)")
        }
        committed = true
        AtomicFile.syncDirectory(target.deletingLastPathComponent().path)
        if let old { try? fm.removeItem(at: old) }
    }

    /// Removes the temporary folder unless committed.
    func discard() {
        if !committed { try? FileManager.default.removeItem(at: temporary) }
    }
}
