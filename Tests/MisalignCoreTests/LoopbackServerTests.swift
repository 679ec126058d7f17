import Testing
import Foundation
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

/// The loopback server behind the mock judge and completion servers, which tests start and stop
/// by the dozen side by side.
@Suite struct LoopbackServerTests {
    /// One request on a fresh connection: true when a whole 200 response came back.
    static func request(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { return false }
        let text = Array("POST /v1/x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}".utf8)
        guard send(fd, text, text.count, Int32(MSG_NOSIGNAL)) == text.count else { return false }
        var got = [UInt8](), chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            got += chunk[0..<n]
            let s = String(decoding: got, as: UTF8.self)
            if s.hasPrefix("HTTP/1.1 200"), s.hasSuffix("\r\n\r\n{}") { return true }
        }
    }

    /// Stopping a server touches only its own sockets. Its `stop` used to shut down the
    /// descriptors of its connections after letting go of its lock, and to close its listening
    /// socket under the accept loop; a number closed meanwhile could already be another server's
    /// connection (the kernel reuses the lowest free number at once), which was then hung up on
    /// mid-request: the empty replies that failed the 429 and proxy tests under the full suite.
    /// Here one server answers a stream of requests while others start, answer one request and
    /// stop beside it, as fast as they can; every request to the long-lived server must succeed.
    @Test func stoppingAServerNeverHangsUpOnAnother() throws {
        let ok: LoopbackHTTPServer.Handler = { _, _ in .respond(status: 200, headers: [], body: Data("{}".utf8)) }
        let steady = try LoopbackHTTPServer(recordRequests: false, handler: ok)
        defer { steady.stop() }
        let failures = LockedCount(), churned = LockedCount()
        DispatchQueue.concurrentPerform(iterations: 3) { lane in
            if lane == 0 {
                for _ in 0..<2000 where !Self.request(port: steady.port) { failures.add() }
            } else {
                for _ in 0..<500 {
                    guard let s = try? LoopbackHTTPServer(recordRequests: false, handler: ok) else { continue }
                    if Self.request(port: s.port) { churned.add() }
                    s.stop()
                }
            }
        }
        #expect(failures.value == 0, "\(failures.value) of 2000 requests to the server that kept running failed")
        #expect(churned.value > 0)
    }
}

private final class LockedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
