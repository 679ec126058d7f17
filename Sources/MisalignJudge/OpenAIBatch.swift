import Foundation
import MisalignHTTP
import MisalignIO

/// OpenAI Batch API mode for sweeps: the same requests as `OpenAIJudge`, sent as one JSONL
/// file (`POST /files`, purpose `batch`), run by `POST /batches` within the completion window at
/// the batch discount, polled (`GET /batches/ID`) and downloaded (`GET /files/ID/content`).
/// Results go into the verdict cache, so the ordinary run that follows finds them there and
/// makes no live call for them; lines the batch failed are simply judged live by that run.
public struct OpenAIBatch: Sendable {
    public let judge: OpenAIJudge
    public let cache: VerdictCache
    /// Seconds between status polls.
    public let pollInterval: Double
    /// Give up waiting after this many seconds (the batch keeps running server-side).
    public let maxWait: Double
    private let clock: any JudgeClock

    public init(judge: OpenAIJudge, cache: VerdictCache, pollInterval: Double = 60, maxWait: Double = 26 * 3600,
                clock: any JudgeClock = SystemJudgeClock()) {
        self.judge = judge; self.cache = cache; self.pollInterval = pollInterval; self.maxWait = maxWait; self.clock = clock
    }

    /// What a batch did.
    public struct Outcome: Sendable, Equatable {
        public var submitted: Int
        public var cached: Int
        public var failed: Int
        public var batchID: String?
    }

    /// Submits every item not already cached as one batch, waits for it, caches the verdicts.
    public func prefill(_ items: [JudgeItem]) async throws(JudgeError) -> Outcome {
        var pending: [String: JudgeItem] = [:]
        var order: [String] = []
        for item in items {
            let key = VerdictCache.key(judge: judge, item: item)
            if pending[key] == nil, try cache.get(key) == nil { pending[key] = item; order.append(key) }
        }
        guard !order.isEmpty else { return Outcome(submitted: 0, cached: 0, failed: 0, batchID: nil) }
        var jsonl = ""
        for key in order {
            let item = pending[key]!
            let req = judge.request(prompt: item.rubric.prompt(question: item.question, answer: item.answer))
            guard let body = try? JSONValue.parse(req.body!) else { throw malformed("could not re-read a request body") }
            jsonl += JSONValue.object(JSONObject([
                ("custom_id", .string(key)), ("method", .string("POST")), ("url", .string("/v1/chat/completions")), ("body", body),
            ])).serialized() + "\n"
        }
        let fileID = try await upload(jsonl)
        let created = try await call("POST", "/batches", json: JSONValue.object(JSONObject([
            ("input_file_id", .string(fileID)), ("endpoint", .string("/v1/chat/completions")), ("completion_window", .string("24h")),
        ])))
        guard let batchID = created["id"]?.stringValue else { throw malformed("batch creation returned no id") }
        let started = clock.now()
        var status = created
        while true {
            let s = status["status"]?.stringValue ?? ""
            if s == "completed" { break }
            if ["failed", "expired", "cancelled", "cancelling"].contains(s) {
                throw .invalidInput("batch \(batchID) ended with status \(s); its items will be judged live on the next run")
            }
            guard clock.now() - started < maxWait else {
                throw .timeout(url: judge.config.baseURL + "/batches/\(batchID)", seconds: maxWait)
            }
            await clock.sleep(seconds: pollInterval)
            status = try await call("GET", "/batches/\(batchID)", json: nil)
        }
        var cached = 0, failed = 0
        if let out = status["output_file_id"]?.stringValue {
            let text = try await download(out)
            // Split bytes, not Characters ("\r\n" is a single Character).
            for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
                guard let v = try? JSONValue.parse(Data(line)), let key = v["custom_id"]?.stringValue, let item = pending[key] else { failed += 1; continue }
                guard v["response"]?["status_code"]?.intValue == 200, let body = v["response"]?["body"] else { failed += 1; continue }
                let response = HTTPResponse(status: 200, body: Data(body.serialized().utf8))
                guard let parsed = try? OpenAIJudge.parse(response, url: judge.config.baseURL + "/batches/\(batchID)") else { failed += 1; continue }
                // A lone first digit needs continuations the batch cannot make: the live run
                // that follows judges it digit by digit.
                if parsed.refusal?.isEmpty != false, let top = parsed.top, !top.isEmpty, await judge.continuesDigits(top) { failed += 1; continue }
                try cache.put(key, judge.verdict(from: parsed, item: item, attempts: 1, latency: clock.now() - started), identity: judge.cacheIdentity)
                cached += 1
            }
        }
        failed = order.count - cached
        return Outcome(submitted: order.count, cached: cached, failed: failed, batchID: batchID)
    }

    private static func json(_ r: HTTPResponse, url: String) throws(HTTPError) -> JSONValue {
        do { return try JSONValue.parse(r.body) } catch { throw .malformedResponse(url: url, reason: "body is not JSON (\(error.description))") }
    }

    private var base: String {
        judge.config.baseURL.hasSuffix("/") ? String(judge.config.baseURL.dropLast()) : judge.config.baseURL
    }

    private func malformed(_ reason: String) -> JudgeError { .malformedResponse(url: base, reason: reason) }

    private func headers(contentType: String?) -> [(String, String)] {
        var h: [(String, String)] = []
        if let contentType { h.append(("Content-Type", contentType)) }
        if let key = judge.apiKeyForBatch { h.append(("Authorization", "Bearer \(key)")) }
        return h
    }

    private func call(_ method: String, _ path: String, json: JSONValue?) async throws(JudgeError) -> JSONValue {
        let url = base + path
        let req = HTTPRequest(method: method, url: url, headers: headers(contentType: json == nil ? nil : "application/json"),
                              body: json.map { Data($0.serialized().utf8) }, timeout: judge.config.timeout)
        return try await judge.client.judged(req, estimatedTokens: 0) { (r) throws(HTTPError) -> JSONValue in
            try Self.json(r, url: url)
        }.0
    }

    /// multipart/form-data upload of the JSONL with purpose=batch.
    private func upload(_ jsonl: String) async throws(JudgeError) -> String {
        let boundary = "misalign-\(UUID().uuidString)"
        var body = "--\(boundary)\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
        body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"judge-batch.jsonl\"\r\n"
        body += "Content-Type: application/jsonl\r\n\r\n\(jsonl)\r\n--\(boundary)--\r\n"
        let url = base + "/files"
        let req = HTTPRequest(method: "POST", url: url, headers: headers(contentType: "multipart/form-data; boundary=\(boundary)"),
                              body: Data(body.utf8), timeout: max(judge.config.timeout, 300), maxResponseBytes: 1 << 20)
        let v = try await judge.client.judged(req, estimatedTokens: 0) { (r) throws(HTTPError) -> JSONValue in
            try Self.json(r, url: url)
        }.0
        guard let id = v["id"]?.stringValue else { throw malformed("file upload returned no id") }
        return id
    }

    private func download(_ fileID: String) async throws(JudgeError) -> String {
        let url = base + "/files/\(fileID)/content"
        let req = HTTPRequest(method: "GET", url: url, headers: headers(contentType: nil), timeout: max(judge.config.timeout, 600),
                              maxResponseBytes: 512 << 20)
        return try await judge.client.judged(req, estimatedTokens: 0) { (r) throws(HTTPError) -> String in
            String(decoding: r.body, as: UTF8.self)
        }.0
    }
}
