import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
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

/// Atomic writes replace regular files only: links are followed, devices and FIFOs written
/// through, never renamed over (`report --output /dev/stdout` as root once replaced the link).
@Suite struct AtomicFileTests {
    private func kind(_ path: String) -> mode_t {
        var st = stat()
        precondition(lstat(path, &st) == 0, "lstat \(path)")
        return st.st_mode & S_IFMT
    }

    @Test func aLinkToARegularFileKeepsTheLinkAndReplacesItsTarget() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let real = dir.appendingPathComponent("sub/real.txt")
        try FileManager.default.createDirectory(at: real.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("old".utf8).write(to: real)
        let link = dir.appendingPathComponent("link.txt")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "sub/real.txt")  // relative

        try AtomicFile.write(Data("new".utf8), to: link)

        #expect(kind(link.path) == S_IFLNK)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link.path) == "sub/real.txt")
        #expect(try String(contentsOf: real, encoding: .utf8) == "new")
        // No temporary file is left beside the link or the target.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["link.txt", "sub"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: real.deletingLastPathComponent().path) == ["real.txt"])
    }

    @Test func aDanglingLinkCreatesItsTarget() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let link = dir.appendingPathComponent("link.txt")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: dir.appendingPathComponent("later.txt").path)
        try AtomicFile.write(Data("x".utf8), to: link)
        #expect(kind(link.path) == S_IFLNK)
        #expect(try String(contentsOfFile: dir.appendingPathComponent("later.txt").path, encoding: .utf8) == "x")
    }

    @Test func devNullAndALinkToItStayWhatTheyAre() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let link = dir.appendingPathComponent("null-link")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "/dev/null")

        try AtomicFile.write(Data("discarded".utf8), to: link)
        try AtomicFile.write(Data("discarded".utf8), to: URL(fileURLWithPath: "/dev/null"))

        #expect(kind(link.path) == S_IFLNK)
        #expect(kind("/dev/null") == S_IFCHR)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["null-link"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: "/dev").allSatisfy { !$0.hasPrefix(".null.tmp") })
    }

    @Test func aFIFOAndALinkToItAreWrittenThroughNotReplaced() async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("pipe")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        let link = dir.appendingPathComponent("pipe-link")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: fifo.path)
        // The reader opens read-write so its open never waits for a writer.
        let reader = open(fifo.path, O_RDWR)
        #expect(reader >= 0)
        defer { close(reader) }

        try AtomicFile.write(Data("through the pipe".utf8), to: link)

        var buf = [UInt8](repeating: 0, count: 64)
        let n = read(reader, &buf, buf.count)
        #expect(n == 16 && String(decoding: buf[..<max(0, n)], as: UTF8.self) == "through the pipe")
        #expect(kind(fifo.path) == S_IFIFO)
        #expect(kind(link.path) == S_IFLNK)
    }

    @Test func anOpenDescriptorPathIsWrittenAtItsOffset() throws {
        // `/dev/stdout` is a link to `/proc/self/fd/1`; a pipe's end stands in for the terminal.
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        try AtomicFile.write(Data("to the descriptor".utf8), to: URL(fileURLWithPath: "/dev/fd/\(fds[1])"))
        var buf = [UInt8](repeating: 0, count: 64)
        let n = read(fds[0], &buf, buf.count)
        #expect(String(decoding: buf[..<max(0, n)], as: UTF8.self) == "to the descriptor")
        #expect(Target.ownDescriptor("/dev/stdout") == 1)
        #expect(try Target.resolve("/dev/stdout") == .descriptor(1))
    }

    @Test func aFolderIsRefusedByName() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: FileError.notARegularFile(path: dir.path, kind: "a folder")) {
            try AtomicFile.write(Data("x".utf8), to: dir)
        }
        #expect("\(FileError.notARegularFile(path: dir.path, kind: "a folder"))".contains("it is a folder, not a file"))
    }
}

@Suite struct AtomicOutputCLITests {
    @Test func reportToDevStdoutPrintsTheReportAndLeavesTheLink() throws {
        let r = try CLI.run(["report", "--simulate", "--resamples", "10", "--format", "md", "--output", "/dev/stdout"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("## Overview"), "the report went through the pipe to stdout")
        var st = stat()
        #expect(lstat("/dev/stdout", &st) == 0 && st.st_mode & S_IFMT == S_IFLNK)
    }
}
