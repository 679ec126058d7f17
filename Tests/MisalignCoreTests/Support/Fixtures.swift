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

    /// A fresh empty directory under the system temp folder, removed by the caller's `defer`.
    static func temporaryDirectory(_ label: String = "misalign-test") -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}
