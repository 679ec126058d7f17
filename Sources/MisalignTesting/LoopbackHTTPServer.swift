import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import MisalignCore

/// A small HTTP/1.1 server on 127.0.0.1 whose handler decides, per request, what to answer
/// (including misbehaving: stalls, truncated bodies, error statuses). It carries the stand-in
/// servers of the tests, benchmarks and dry runs: `MockJudgeServer` (OpenAI chat completions
/// and Anthropic Messages) and `MockCompletionServer` (vLLM completions and LoRA loading).
/// Blocking POSIX sockets, one thread per connection (connections are kept alive, so a
/// client with N in flight costs N threads).
public final class LoopbackHTTPServer: Sendable {
    /// A received request. Header names are lower-case.
    public struct Request: Sendable {
        public var method: String
        /// The request target as sent: a path, or an absolute URL when sent through a proxy.
        public var target: String
        public var headers: [String: String]
        public var body: Data
        /// The path, with any `scheme://host` of an absolute target removed.
        public var path: String {
            guard target.hasPrefix("http://") || target.hasPrefix("https://") else { return target }
            let rest = target.drop(while: { $0 != "/" }).dropFirst(2)
            return rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? "/"
        }
        public var json: JSONValue? { try? JSONValue.parse(body) }
        public init(method: String, target: String, headers: [String: String], body: Data) {
            self.method = method; self.target = target; self.headers = headers; self.body = body
        }
    }

    /// What to do with a request.
    public enum Action: Sendable {
        case respond(status: Int, headers: [(String, String)], body: Data)
        /// Say nothing for `seconds`, then close the connection.
        case stall(seconds: Double)
        /// Announce the full body length, send half of it, close the connection.
        case truncate(status: Int, body: Data)
    }

    /// Decides the action for a request; `number` counts requests from 1 across the server.
    public typealias Handler = @Sendable (_ request: Request, _ number: Int) -> Action

    public let port: Int
    public var baseURL: String { "http://127.0.0.1:\(port)/v1" }
    private let listenFD: Int32
    private let handler: Handler
    private struct State {
        var received: [Request] = []
        var count = 0
        var active = 0
        var stopped = false
        /// Accepted connections still open; `stop` shuts them down.
        var connections: Set<Int32> = []
        /// `POST /tokenize` requests answered by the stand-in itself.
        var tokenizes = 0
    }
    private let state = Mutex(State())
    /// Keep the request log (off for the benchmark, where it would only grow).
    public let recordRequests: Bool
    /// How the stand-in's `POST /tokenize` (vLLM's endpoint, which `openai:` judges ask how
    /// the server spells "85") answers: each number one token, each digit one token, or not at
    /// all (the handler gets the request). Answered here, outside `requestCount` and
    /// `requests`, so tests count chat requests only.
    public enum Tokenizer: Sendable { case wholeNumbers, digits, none }
    public let tokenizer: Tokenizer

    public init(recordRequests: Bool = true, tokenizer: Tokenizer = .wholeNumbers, handler: @escaping Handler) throws(JudgeError) {
        self.handler = handler
        self.recordRequests = recordRequests
        self.tokenizer = tokenizer
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw .connection(url: "127.0.0.1", reason: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0 // ephemeral
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 1024) == 0 else {
            close(fd)
            throw .connection(url: "127.0.0.1", reason: "bind/listen: \(String(cString: strerror(errno)))")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        listenFD = fd
        let t = Thread { [self] in self.acceptLoop() }
        t.name = "misalign.mockserver"
        t.start()
    }

    deinit { stop() }

    /// Requests received so far (every attempt counts).
    public var requestCount: Int { state.withLock { $0.count } }
    /// `POST /tokenize` requests answered by the stand-in itself.
    public var tokenizeCount: Int { state.withLock { $0.tokenizes } }
    /// Requests whose handler is running or whose response is being sent.
    public var inFlight: Int { state.withLock { $0.active } }
    /// The requests received, in arrival order (empty when `recordRequests` is off).
    public var requests: [Request] { state.withLock { $0.received } }

    /// Stops accepting connections and shuts down the open ones (a request being handled gets
    /// no answer). Without that, a client's kept-alive connection would go on reaching this
    /// stopped server after a new server was given the same port.
    ///
    /// The connections are shut down while the lock is held: a connection's thread removes its
    /// descriptor from `connections` under the lock before it closes it, so every descriptor
    /// still listed is still this server's. Shut down after the lock was released, a descriptor
    /// closed meanwhile could already be another socket's in this process (the kernel reuses
    /// the lowest free number at once): with many servers starting and stopping side by side
    /// (the test suite), one server's stop hung up on another's client mid-request, which saw an
    /// empty reply.
    public func stop() {
        let listenFD = self.listenFD
        state.withLock { s in
            // Only shut down: that wakes the accept loop, which closes the socket itself. Closed
            // here, the loop's next accept could take the number after another server reused it.
            if !s.stopped { shutdown(listenFD, Int32(SHUT_RDWR)) }
            s.stopped = true
            for fd in s.connections { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop() {
        while true {
            let c = accept(listenFD, nil, nil)
            if c < 0 {
                if errno == EINTR { continue }
                close(listenFD) // shut down by stop()
                return
            }
            var one: Int32 = 1
            setsockopt(c, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let stopped = state.withLock { s in
                if !s.stopped { s.connections.insert(c) }
                return s.stopped
            }
            if stopped { close(c); close(listenFD); return }
            let t = Thread { [self] in self.serve(c) }
            t.stackSize = 256 << 10
            t.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { state.withLock { _ = $0.connections.remove(fd) }; close(fd) }
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            // Read until the header block is complete.
            var headerEnd: Int? = nil
            while headerEnd == nil {
                headerEnd = Self.find(buffer, [13, 10, 13, 10])
                if headerEnd != nil { break }
                let n = Self.receive(fd, &chunk)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            let head = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
            var lines = head.components(separatedBy: "\r\n")
            let requestLine = lines.removeFirst().split(separator: " ")
            guard requestLine.count >= 2 else { return }
            var headers: [String: String] = [:]
            for l in lines {
                guard let colon = l.firstIndex(of: ":") else { continue }
                headers[l[..<colon].lowercased()] = l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            let bodyStart = headerEnd! + 4
            while buffer.count < bodyStart + length {
                let n = Self.receive(fd, &chunk)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            let request = Request(method: String(requestLine[0]), target: String(requestLine[1]), headers: headers,
                                  body: Data(buffer[bodyStart..<(bodyStart + length)]))
            buffer.removeFirst(bodyStart + length)
            if tokenizer != .none, request.method == "POST", request.path == "/tokenize" {
                state.withLock { $0.tokenizes += 1 }
                if !sendAll(fd, Self.tokenizeResponse(request, tokenizer)) { return }
                continue
            }
            let record = recordRequests
            let number = state.withLock { s in
                s.count += 1
                if record { s.received.append(request) }
                s.active += 1
                return s.count
            }
            let action = handler(request, number)
            defer { state.withLock { $0.active -= 1 } }
            switch action {
            case .respond(let status, let extra, let body):
                if !sendAll(fd, Self.head(status: status, headers: extra, length: body.count) + body) { return }
            case .stall(let seconds):
                Thread.sleep(forTimeInterval: seconds)
                return
            case .truncate(let status, let body):
                _ = sendAll(fd, Self.head(status: status, headers: [], length: body.count) + body.prefix(body.count / 2))
                return
            }
        }
    }

    /// vLLM's `/tokenize` answer for the request's `prompt`: a run of digits is one token
    /// (`wholeNumbers`) or one per digit (`digits`); every other character is one token.
    static func tokenizeResponse(_ request: Request, _ tokenizer: Tokenizer) -> Data {
        let prompt = request.json?["prompt"]?.stringValue ?? ""
        var tokens: [JSONValue] = []
        var inNumber = false
        for ch in prompt {
            let digit = ch.isASCII && ch.isNumber
            if digit && inNumber && tokenizer == .wholeNumbers { continue }
            inNumber = digit
            tokens.append(.int(Int64(ch.unicodeScalars.first!.value)))
        }
        let body = Data(JSONValue.object(JSONObject([("count", .int(Int64(tokens.count))), ("max_model_len", .int(32768)),
                                                     ("tokens", .array(tokens))])).serialized().utf8)
        return head(status: 200, headers: [], length: body.count) + body
    }

    /// `recv` into `chunk`, again when a signal interrupts it. A signal (SIGCHLD from a child
    /// process another test had started) once made it return -1 with EINTR, and the server hung
    /// up on a request it had not read: the client saw an empty reply and retried.
    private static func receive(_ fd: Int32, _ chunk: inout [UInt8]) -> Int {
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && errno == EINTR { continue }
            return n
        }
    }

    private static func head(status: Int, headers: [(String, String)], length: Int) -> Data {
        var s = "HTTP/1.1 \(status) \(status < 300 ? "OK" : "Error")\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\n"
        for (k, v) in headers { s += "\(k): \(v)\r\n" }
        return Data((s + "\r\n").utf8)
    }

    private func sendAll(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw -> Bool in
            var done = 0
            while done < raw.count {
                let n = send(fd, raw.baseAddress! + done, raw.count - done, Int32(MSG_NOSIGNAL))
                if n <= 0 { if errno == EINTR { continue }; return false }
                done += n
            }
            return true
        }
    }

    private static func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
        return nil
    }
}
