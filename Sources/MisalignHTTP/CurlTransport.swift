import Foundation
import CCurl

/// `HTTPTransport` over libcurl's multi interface, driven by one dedicated thread, so
/// hundreds of requests can be in flight without a thread each. Callers suspend on a
/// continuation that the thread resumes when the transfer completes.
///
/// Proxies: no `CURLOPT_PROXY` is set, so libcurl itself reads `http_proxy`, `https_proxy`
/// (or `HTTPS_PROXY`), `all_proxy` and `no_proxy` from the environment. Note that libcurl
/// deliberately ignores upper-case `HTTP_PROXY` (the CGI "httpoxy" hazard).
/// TLS: libcurl's defaults (peer and host verification on, system CA store).
public final class CurlTransport: HTTPTransport, Sendable {
    private let engine: CurlEngine

    /// `maxConnections` caps open connections across all hosts (libcurl queues the rest).
    public init(maxConnections: Int = 64) {
        engine = CurlEngine(maxConnections: maxConnections)
    }

    deinit { engine.stop() }

    /// Cancelling the calling task aborts the transfer (it fails with `cancelled`).
    public func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        let handle = CancelHandle()
        let engine = self.engine
        let result: Result<HTTPResponse, HTTPError> = await withTaskCancellationHandler {
            await withCheckedContinuation { cont in
                guard let transfer = Transfer(request: request, continuation: cont) else {
                    cont.resume(returning: .failure(.connection(url: request.url, reason: "curl_easy_init failed")))
                    return
                }
                engine.enqueue(transfer)
                if handle.attach(transfer) { engine.cancel(transfer) } // cancelled before it was attached
            }
        } onCancel: {
            if let t = handle.cancel() { engine.cancel(t) }
        }
        return try result.get()
    }
}

/// Links a task's cancellation to its transfer, whichever comes first.
// Unchecked Sendable: `transfer` and `cancelled` are read and written only while `lock` is held.
// (A `Mutex` cannot hand the non-Sendable `Transfer` out; the transfer it hands out goes only
// to `CurlEngine.cancel`, and only the engine thread touches a transfer's state once enqueued.)
private final class CancelHandle: @unchecked Sendable {
    private let lock = NSLock()
    private var transfer: Transfer?
    private var cancelled = false
    /// Records the transfer; true if the task was already cancelled.
    func attach(_ t: Transfer) -> Bool { lock.lock(); defer { lock.unlock() }; transfer = t; return cancelled }
    /// Marks cancelled; the transfer to abort, if attached.
    func cancel() -> Transfer? { lock.lock(); defer { lock.unlock() }; cancelled = true; return transfer }
}

/// Process-wide libcurl initialisation; must happen before any thread uses libcurl.
private let curlGlobalInit: Void = { _ = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

/// Per-request state handed to libcurl's C callbacks through `Unmanaged` (the callbacks are
/// C function pointers and cannot capture Swift context).
private final class Transfer {
    let easy: UnsafeMutableRawPointer
    let request: HTTPRequest
    let continuation: CheckedContinuation<Result<HTTPResponse, HTTPError>, Never>
    var body = Data()
    var headers: [String: String] = [:]
    var overflow = false
    var slist: UnsafeMutablePointer<curl_slist>?
    /// Set on the engine thread once the continuation is resumed (completion or cancellation).
    var finished = false

    init?(request: HTTPRequest, continuation: CheckedContinuation<Result<HTTPResponse, HTTPError>, Never>) {
        _ = curlGlobalInit
        guard let easy = curl_easy_init() else { return nil }
        self.easy = easy
        self.request = request
        self.continuation = continuation
        configure()
    }

    deinit {
        curl_easy_cleanup(easy)
        if let slist { curl_slist_free_all(slist) }
    }

    private func configure() {
        _ = misalign_curl_setopt_string(easy, CURLOPT_URL, request.url)
        _ = misalign_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1) // signals are process-wide; never from a worker thread
        _ = misalign_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(request.connectTimeout * 1000)))
        _ = misalign_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, max(1, Int(request.timeout * 1000)))
        _ = misalign_curl_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        switch request.method {
        case "GET": _ = misalign_curl_setopt_long(easy, CURLOPT_HTTPGET, 1)
        case "POST": _ = misalign_curl_setopt_long(easy, CURLOPT_POST, 1)
        default: _ = misalign_curl_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method)
        }
        if let body = request.body {
            // COPYPOSTFIELDS copies POSTFIELDSIZE bytes now, so `body` need not outlive this call.
            _ = misalign_curl_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            if body.isEmpty {
                _ = misalign_curl_setopt_string(easy, CURLOPT_COPYPOSTFIELDS, "")
            } else {
                body.withUnsafeBytes { raw in
                    _ = misalign_curl_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress!))
                }
            }
        }
        // "Expect:" with no value stops libcurl's 100-continue round trip for larger bodies.
        for (name, value) in request.headers + [("Expect", "")] {
            slist = curl_slist_append(slist, value.isEmpty ? "\(name):" : "\(name): \(value)")
        }
        _ = misalign_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, slist)
        _ = misalign_curl_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback)
        _ = misalign_curl_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback)
        let me = Unmanaged.passUnretained(self).toOpaque()
        _ = misalign_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, me)
        _ = misalign_curl_setopt_pointer(easy, CURLOPT_HEADERDATA, me)
    }

    /// Builds the result once libcurl reports the transfer done.
    func finish(code: CURLcode) -> Result<HTTPResponse, HTTPError> {
        let url = request.url
        if code == CURLE_OK {
            var status = 0
            _ = misalign_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            return .success(HTTPResponse(status: status, headers: headers, body: body))
        }
        let reason = String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_WRITE_ERROR where overflow: return .failure(.responseTooLarge(url: url, limit: request.maxResponseBytes))
        case CURLE_OPERATION_TIMEDOUT: return .failure(.timeout(url: url, seconds: request.timeout))
        case CURLE_PARTIAL_FILE, CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_BAD_CONTENT_ENCODING:
            return .failure(.truncated(url: url, reason: reason))
        default: return .failure(.connection(url: url, reason: reason))
        }
    }
}

private let curlWriteCallback: misalign_curl_data_callback = { ptr, size, nmemb, userdata in
    let t = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
    let n = size * nmemb
    if t.body.count + n > t.request.maxResponseBytes {
        t.overflow = true
        return 0 // anything but n aborts the transfer with CURLE_WRITE_ERROR
    }
    if n > 0, let ptr { t.body.append(UnsafeRawPointer(ptr).assumingMemoryBound(to: UInt8.self), count: n) }
    return n
}

private let curlHeaderCallback: misalign_curl_data_callback = { ptr, size, nmemb, userdata in
    let t = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
    let n = size * nmemb
    guard let ptr, n > 0 else { return n }
    let line = String(decoding: UnsafeRawBufferPointer(start: ptr, count: n), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        t.headers = [:] // a new status line (after 1xx): earlier headers belong to another response
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        t.headers[name] = value
    }
    return n
}

/// Owns the multi handle and the thread that drives it. All multi calls happen on that thread;
/// other threads only append to `pending` and call `curl_multi_wakeup` (thread-safe).
// Unchecked Sendable: `pending`, `cancelled` and `stopping` are read and written only while
// `lock` is held; the multi handle is used only on the engine thread (`run`), except for
// `curl_multi_wakeup`, which libcurl documents as callable from any thread; the transfers
// handed over through `pending` and `cancelled` are touched only by the engine thread.
private final class CurlEngine: @unchecked Sendable {
    private let multi: UnsafeMutableRawPointer
    private let lock = NSLock()
    private var pending: [Transfer] = []
    private var cancelled: [Transfer] = []
    private var stopping = false

    init(maxConnections: Int) {
        _ = curlGlobalInit
        multi = curl_multi_init()
        _ = misalign_curl_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max(1, maxConnections))
        _ = misalign_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, max(1, maxConnections))
        let thread = Thread { [self] in self.run() }
        thread.name = "misalign.curl"
        thread.start()
    }

    func enqueue(_ t: Transfer) {
        lock.lock(); pending.append(t); lock.unlock()
        curl_multi_wakeup(multi)
    }

    /// Aborts `t` if it has not finished (thread-safe; the engine thread does the work).
    func cancel(_ t: Transfer) {
        lock.lock(); cancelled.append(t); lock.unlock()
        curl_multi_wakeup(multi)
    }

    func stop() {
        lock.lock(); stopping = true; lock.unlock()
        curl_multi_wakeup(multi)
    }

    private func run() {
        var active: [UnsafeMutableRawPointer: Transfer] = [:]
        while true {
            lock.lock()
            let new = pending; pending = []
            let aborts = cancelled; cancelled = []
            let stop = stopping
            lock.unlock()
            for t in new {
                active[t.easy] = t
                curl_multi_add_handle(multi, t.easy)
            }
            for t in aborts where !t.finished {
                if active.removeValue(forKey: t.easy) != nil { curl_multi_remove_handle(multi, t.easy) }
                t.finished = true
                t.continuation.resume(returning: .failure(.cancelled(url: t.request.url)))
            }
            if stop && active.isEmpty { break }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var left: Int32 = 0
            while let msg = curl_multi_info_read(multi, &left) {
                guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle,
                      let t = active.removeValue(forKey: easy) else { continue }
                let code = msg.pointee.data.result
                curl_multi_remove_handle(multi, easy)
                t.finished = true
                t.continuation.resume(returning: t.finish(code: code))
            }
            curl_multi_poll(multi, nil, 0, 1000, nil)
        }
        curl_multi_cleanup(multi)
    }
}
