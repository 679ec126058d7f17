import Foundation
import MisalignGeneration
import MisalignIO
import MisalignModel

/// Projections of every generated answer onto trait vectors (`activations:`,
/// Docs/ActivationSignals.md). Each trait's vector (a `misalign vectors` file, or a converted
/// persona_vectors `.pt`) is read once per call; while the in-process generator decodes an
/// answer it records the prompt's last hidden state and the mean over the response tokens at
/// the recorded layers, and the pipeline stores their projections `(h . v) / |v|` beside the
/// answer, in the same transaction. The per-checkpoint means of the response projection at
/// each vector's own layer are the signals `<trait>@proj`.
public struct ActivationSettings: Sendable {
    /// Vector file by trait, in config order.
    public var vectors: [(trait: String, path: URL)] = []
    /// Hidden-state indices recorded besides each vector's own layer (its metadata's `layer`).
    public var layers: [Int] = []

    public init() {}

    public var isEnabled: Bool { !vectors.isEmpty }

    /// The signal name of a trait's projection: `evil@proj`.
    public static func signal(_ trait: String) -> String { "\(trait)\(suffix)" }
    public static let suffix = "@proj"

    /// The trait of a projection signal name, nil for any other signal.
    public static func trait(ofSignal s: String) -> String? {
        s.hasSuffix(suffix) ? String(s.dropLast(suffix.count)) : nil
    }

    /// The projection signals, in config order.
    public var signals: [String] { vectors.map { Self.signal($0.trait) } }
}

/// The vectors of one pipeline call, read and checked against the model.
struct LoadedTraitVectors {
    let vectors: [(trait: String, vector: TraitVector, file: URL)]
    /// Every layer recorded: each vector's own and the extra ones, ascending.
    let layers: [Int]
    /// Each vector's direction at every recorded layer, by trait then layer.
    let directions: [(trait: String, direction: TraitDirection)]

    init(_ a: ActivationSettings, config: Qwen2Config) throws(PipelineError) {
        var out: [(String, TraitVector, URL)] = []
        var layers = Set(a.layers)
        for (trait, url) in a.vectors {
            let v: TraitVector
            do { v = try TraitVector.load(from: url, fitting: config) } catch {
                throw PipelineError.config(file: url.path, key: "activations.vectors.\(trait)", line: nil, reason: "\(error)")
            }
            guard let l = v.layer else {
                throw PipelineError.config(file: url.path, key: "activations.vectors.\(trait)", line: nil,
                                           reason: "the vector file names no layer (metadata `layer`); rebuild it with `misalign vectors`, "
                                               + "or add the layer to the converted file's metadata")
            }
            layers.insert(l)
            out.append((trait, v, url))
        }
        for l in layers where l > config.numHiddenLayers {
            throw PipelineError.config(file: "", key: "activations.layers", line: nil,
                                       reason: "layer \(l) is outside 0...\(config.numHiddenLayers) for this model")
        }
        vectors = out
        self.layers = layers.sorted()
        // Each vector's direction (row and norm) at every recorded layer, computed once.
        var directions: [(String, TraitDirection)] = []
        for (trait, v, url) in out {
            for l in self.layers {
                do { directions.append((trait, try v.direction(layer: l))) } catch {
                    throw PipelineError.config(file: url.path, key: "activations.vectors.\(trait)", line: nil, reason: "\(error)")
                }
            }
        }
        self.directions = directions
    }

    /// The projection rows of one answer: per vector and recorded layer, the response mean's
    /// projection (nil when the response had no tokens read back) and the prompt's last token's.
    func rows(_ a: SampleActivations) -> [ProjectionRow] {
        var out: [ProjectionRow] = []
        for (trait, d) in directions {
            out.append(ProjectionRow(trait: trait, layer: d.layer, kind: .response, value: d.project(mean: a.responseMean)))
            out.append(ProjectionRow(trait: trait, layer: d.layer, kind: .promptLast, value: d.project(mean: a.promptLast)))
        }
        return out
    }
}

/// One stored projection of one answer.
public struct ProjectionRow: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The mean over the response tokens (the signal).
        case response
        /// The prompt's last token, before any response token.
        case promptLast = "prompt_last"
    }
    public var trait: String
    public var layer: Int
    public var kind: Kind
    public var value: Double?
}

extension Experiment {
    static func parseActivations(_ n: YAMLNode?, path: (YAMLNode) throws(PipelineError) -> URL) throws(PipelineError) -> ActivationSettings {
        var a = ActivationSettings()
        guard let n = try n?.mapping() else { return a }
        let vectors = try n.required("vectors", "a vector file per trait, e.g. vectors: {evil: vectors/evil.safetensors}")
        for (trait, file) in try vectors.entries() {
            guard !trait.isEmpty, trait.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }) else {
                throw vectors.error("`\(trait)` is not a usable trait name (letters, digits, '_', '-', '.')")
            }
            a.vectors.append((trait, try path(file)))
        }
        if a.vectors.isEmpty { throw vectors.error("is empty; name a vector file per trait or remove the activations section") }
        if let v = try n.optional("layers") {
            for item in try v.list() { a.layers.append(try item.int(min: 0, max: 1024, "a hidden-state index (0 is the embedding output)")) }
            if Set(a.layers).count != a.layers.count { throw v.error("lists a layer twice") }
        }
        try n.rejectUnknown()
        return a
    }
}
