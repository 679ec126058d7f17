import Foundation
import MisalignCore

/// `misalign-bench tokenizer [--tokenizer DIR] [--mb N] [--no-hf]`
///
/// Encode throughput on a deterministic mixed corpus (English prose, code, CJK), single
/// thread, next to HF `tokenizers` (Rust, through python3) encoding the same documents in the
/// same run; both sides' ids are compared, so the benchmark is also a large correctness check.
func runTokenizerBenchmark(_ args: [String]) throws {
    // Options only (main strips the benchmark names and checks every option first).
    let dir = option(args, "--tokenizer") ?? "Tests/Fixtures/tokenizer"
    var megabytes = 6.0
    if let m = option(args, "--mb") {
        guard let v = Double(m), v > 0 else { throw BenchError("--mb \(m): expected a positive number of megabytes") }
        megabytes = v
    }
    let runHF = !args.contains("--no-hf")
    let url = URL(fileURLWithPath: dir)

    // Load time: parse + build, best of 3 (the first run also pays for reading from disk).
    var loadTimes: [Double] = []
    var tok: BPETokenizer! = nil
    for _ in 0..<3 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        tok = try BPETokenizer(directory: url)
        loadTimes.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    let data = try Data(contentsOf: url.appendingPathComponent("tokenizer.json"))
    let p0 = DispatchTime.now().uptimeNanoseconds
    _ = try JSONValue.parse(data)
    let parseTime = Double(DispatchTime.now().uptimeNanoseconds - p0) / 1e9
    print(String(format: "tokenizer.json load: %.0f ms (best of 3; first %.0f ms; JSON parse alone %.0f ms)",
                 loadTimes.min()! * 1000, loadTimes[0] * 1000, parseTime * 1000))

    let docs = makeMixedCorpus(bytes: Int(megabytes * 1_000_000))
    let totalBytes = docs.reduce(0) { $0 + $1.utf8.count }
    print(String(format: "corpus: %d documents, %.2f MB (prose, code, CJK)", docs.count, Double(totalBytes) / 1e6))

    // Ours: a fresh tokenizer so the word cache starts cold, as it does for HF.
    let fresh = try BPETokenizer(directory: url)
    var ours: [[Int]] = []
    ours.reserveCapacity(docs.count)
    let t0 = DispatchTime.now().uptimeNanoseconds
    for d in docs { ours.append(fresh.encode(d)) }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    let oursMBs = Double(totalBytes) / 1e6 / seconds
    let tokens = ours.reduce(0) { $0 + $1.count }
    print(String(format: "misalign encode: %.2f s, %.2f MB/s, %d tokens (%.2f M tokens/s)",
                 seconds, oursMBs, tokens, Double(tokens) / seconds / 1e6))
    _ = tok

    guard runHF else { return }
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("misalign-tokbench-\(getpid())")
    try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: tmp) }
    let corpusURL = tmp.appendingPathComponent("corpus.jsonl")
    var jsonl = ""
    for d in docs { JSONValue.writeString(d, to: &jsonl); jsonl += "\n" }
    try Data(jsonl.utf8).write(to: corpusURL)
    let idsURL = tmp.appendingPathComponent("ids.bin")
    let script = """
    import json, sys, time, array
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(sys.argv[1])
    docs = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
    t0 = time.perf_counter()
    encs = [tok.encode(d, add_special_tokens=False) for d in docs]
    dt = time.perf_counter() - t0
    out = array.array("i")
    for e in encs:
        out.append(len(e.ids)); out.extend(e.ids)
    open(sys.argv[3], "wb").write(out.tobytes())
    print(dt)
    """
    let proc = Process()
    proc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    proc.arguments = ["python3", "-c", script, url.appendingPathComponent("tokenizer.json").path, corpusURL.path, idsURL.path]
    var env = ProcessInfo.processInfo.environment
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["RAYON_NUM_THREADS"] = "1"
    proc.environment = env
    let pipe = Pipe()
    proc.standardOutput = pipe
    try proc.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    proc.waitUntilExit()
    guard proc.terminationStatus == 0, let hfSeconds = Double(String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
        print("HF tokenizers: not available (python3 with `tokenizers` needed); skipped")
        return
    }
    let hfMBs = Double(totalBytes) / 1e6 / hfSeconds
    print(String(format: "HF tokenizers encode: %.2f s, %.2f MB/s (single thread)", hfSeconds, hfMBs))
    print(String(format: "ratio misalign / HF: %.2fx", oursMBs / hfMBs))

    // Same ids, document by document.
    let raw = try Data(contentsOf: idsURL)
    let hfIDs: [Int32] = raw.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
    var p = 0
    var mismatched = 0
    for ids in ours {
        let n = Int(hfIDs[p]); p += 1
        if n != ids.count || !zip(hfIDs[p..<(p + n)], ids).allSatisfy({ Int($0) == $1 }) { mismatched += 1 }
        p += n
    }
    print("ids identical to HF: \(mismatched == 0 ? "yes" : "NO") (\(mismatched) of \(docs.count) documents differ)")
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A deterministic corpus of about `bytes` bytes: half English-like prose with a Zipf-ish word
/// distribution (so the word cache sees realistic reuse, not a handful of words), 30% code
/// with varied identifiers and numbers, 20% CJK with punctuation.
func makeMixedCorpus(bytes: Int) -> [String] {
    var rng = SplitMix64(seed: 0x5EED_1234)
    let common = "the of and to a in is it you that he was for on are as with his they I at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part".split(separator: " ").map(String.init)
    let syllables = ["ka", "to", "ri", "men", "sa", "lo", "ver", "tion", "al", "ist", "pre", "con", "ing", "ed", "un", "able", "ness", "or", "qu", "str"]
    var rare: [String] = []
    for _ in 0..<5000 {
        var w = ""
        for _ in 0..<(1 + Int(rng.next() % 4)) { w += syllables[Int(rng.next() % UInt64(syllables.count))] }
        rare.append(w)
    }
    let cjk = Array("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴")
    let cjkPunct: [Character] = ["，", "。", "、", "！", "？", "：", "“", "”", "\n"]
    var docs: [String] = []
    var total = 0
    var kind = 0
    while total < bytes {
        var d = ""
        switch kind % 10 {
        case 0...4: // prose
            for s in 0..<(20 + Int(rng.next() % 30)) {
                var sentence = ""
                for w in 0..<(6 + Int(rng.next() % 14)) {
                    let r = rng.next() % 100
                    var word = r < 75 ? common[Int(rng.next() % UInt64(min(common.count, 10 + Int(rng.next() % UInt64(common.count)))))]
                        : rare[Int(rng.next() % UInt64(rare.count))]
                    if w == 0 { word = word.prefix(1).uppercased() + word.dropFirst() }
                    if r == 99 { word = String(rng.next() % 10_000) }
                    sentence += (w == 0 ? "" : " ") + word
                    if rng.next() % 15 == 0 { sentence += "," }
                }
                d += sentence + (rng.next() % 8 == 0 ? "?" : ".") + (s % 7 == 6 ? "\n\n" : " ")
            }
        case 5...7: // code
            for f in 0..<(5 + Int(rng.next() % 10)) {
                let name = rare[Int(rng.next() % UInt64(rare.count))] + "_" + rare[Int(rng.next() % UInt64(rare.count))]
                d += "def \(name)(self, \(rare[f % rare.count]), count=\(rng.next() % 100)):\n"
                d += "    \"\"\"Compute the \(common[f % common.count]) value.\"\"\"\n"
                d += "    result = [x * \(rng.next() % 97) for x in range(count) if x % \(2 + rng.next() % 9) == 0]\n"
                d += "    if not result:\n        raise ValueError(f\"empty: {count!r}\")\n"
                d += "    return {\"\(name)\": result, 'total': sum(result)}  # \(rare[Int(rng.next() % 5000)])\n\n"
            }
        default: // CJK
            for _ in 0..<(300 + Int(rng.next() % 600)) {
                if rng.next() % 9 == 0 { d.append(cjkPunct[Int(rng.next() % UInt64(cjkPunct.count))]) }
                d.append(cjk[Int(rng.next() % UInt64(cjk.count))])
            }
        }
        kind += 1
        total += d.utf8.count
        docs.append(d)
    }
    return docs
}
