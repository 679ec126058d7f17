import Foundation
import MisalignIO
import MisalignKernels

/// A trait direction per hidden-state index (persona vectors): `[layers + 1, hidden]` f32,
/// row `l` the direction at hidden state `l` as `HiddenStateRequest` numbers them, with what
/// it was made from.
///
/// On disk: one safetensors file holding one F32 tensor `vector` and the metadata below
/// (`write(to:)`, atomic). `load(from:)` also reads a file converted from the Python
/// reference's `.pt` (Docs/ActivationSignals.md): a single tensor of that shape, whatever its
/// name, F32, BF16 or F16, with no metadata.
public struct TraitVector: Sendable {
    /// The tensor name `write(to:)` uses.
    public static let tensorName = "vector"
    /// The `format` metadata value `write(to:)` stores.
    public static let formatName = "misalign.trait-vector.v1"

    public let trait: String
    /// `[layers + 1, hidden]`.
    public let values: FloatBuffer
    /// The text that identifies the model the vector was made on (the run's model
    /// fingerprint); nil when unknown (a converted file).
    public let model: String?
    /// The hidden-state index chosen for projections; nil when none was chosen.
    public let layer: Int?
    /// What it was made from: answers kept per side, pairs, questions... (names are the builder's).
    public let counts: [String: Int]
    /// The settings it was made with, as JSON text (`{}` when unknown).
    public let settings: String
    /// The file it was read from, or "trait vector <trait>" for one made in memory; errors name it.
    public let source: String
    /// The tensor the values came from (`vector` unless a converted file named it otherwise).
    public private(set) var tensorNameInFile: String = TraitVector.tensorName

    /// Rows: hidden states per model, `numHiddenLayers + 1`.
    public var entries: Int { values.shape[0] }
    public var hidden: Int { values.shape[1] }

    public init(trait: String, values: FloatBuffer, model: String? = nil, layer: Int? = nil, counts: [String: Int] = [:],
                settings: String = "{}", source: String? = nil) throws(TraitVectorError) {
        let src = source ?? "trait vector \(trait)"
        guard values.shape.count == 2, values.shape[0] >= 1, values.shape[1] >= 1 else {
            throw TraitVectorError.wrongShape(file: src, tensor: Self.tensorName, shape: values.shape)
        }
        if let layer, layer < 0 || layer >= values.shape[0] {
            throw TraitVectorError.invalidMetadata(file: src, field: "layer", detail: "\(layer) is outside 0..<\(values.shape[0]), the vector's rows")
        }
        guard (try? JSONValue.parse(settings))?.objectValue != nil else {
            throw TraitVectorError.invalidMetadata(file: src, field: "settings", detail: "is not a JSON object")
        }
        for l in 0..<values.shape[0] {
            let row = values.pointer + l * values.shape[1]
            for j in 0..<values.shape[1] where !row[j].isFinite {
                throw TraitVectorError.notFinite(file: src, layer: l)
            }
        }
        self.trait = trait; self.values = values; self.model = model; self.layer = layer
        self.counts = counts; self.settings = settings; self.source = src
    }

    /// The direction at hidden-state index `l`, `hidden` values.
    public func row(_ l: Int) -> UnsafeBufferPointer<Float> {
        precondition(l >= 0 && l < entries, "row \(l) of a trait vector with \(entries) rows")
        return UnsafeBufferPointer(start: values.pointer + l * hidden, count: hidden)
    }

    /// Throws unless the vector has a row per hidden state of `config` and its hidden size.
    public func checkFits(_ config: Qwen2Config) throws(TraitVectorError) {
        let name = tensorNameInFile
        guard hidden == config.hiddenSize else {
            throw TraitVectorError.hiddenSizeMismatch(file: source, tensor: name, found: hidden, model: config.hiddenSize)
        }
        guard entries == config.numHiddenLayers + 1 else {
            throw TraitVectorError.layerCountMismatch(file: source, tensor: name, found: entries, model: config.numHiddenLayers + 1)
        }
    }

    // MARK: - Files

    /// The metadata `write(to:)` stores.
    public var metadata: [String: String] {
        var m = ["format": Self.formatName, "trait": trait, "settings": settings,
                 "counts": JSONValue.object(JSONObject(counts.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })).serialized()]
        if let model { m["model"] = model }
        if let layer { m["layer"] = String(layer) }
        return m
    }

    /// Writes the vector as a safetensors file, atomically.
    public func write(to url: URL) throws {
        var w = SafeTensorsWriter(metadata: metadata)
        w.add(Self.tensorName, floats: UnsafeBufferPointer(values.buffer), shape: values.shape)
        try w.write(to: url)
    }

    /// Reads a vector file; with `config`, also checks it fits that model (`checkFits`).
    /// Throws `FileError` / `SafeTensorsError` for an unreadable file, `TraitVectorError` for
    /// one that does not hold a trait vector.
    public static func load(from url: URL, fitting config: Qwen2Config? = nil) throws -> TraitVector {
        let file = try SafeTensorsFile(url: url)
        let path = url.path
        let info: TensorInfo
        if let named = file.tensorInfos.first(where: { $0.name == tensorName }) {
            info = named
        } else if file.tensorInfos.count == 1 {
            info = file.tensorInfos[0]
        } else {
            throw TraitVectorError.missingTensor(file: path, found: file.tensorInfos.map(\.name))
        }
        guard info.shape.count == 2, info.shape[0] >= 1, info.shape[1] >= 1 else {
            throw TraitVectorError.wrongShape(file: path, tensor: info.name, shape: info.shape)
        }
        guard info.dtype.isFloat16or32 else { throw TraitVectorError.wrongDType(file: path, tensor: info.name, dtype: info.dtype) }
        let values = try file.tensor(named: info.name).floatBuffer()

        let m = file.metadata
        var layer: Int?
        if let text = m["layer"] {
            guard let l = Int(text) else { throw TraitVectorError.invalidMetadata(file: path, field: "layer", detail: "\"\(text)\" is not an integer") }
            layer = l
        }
        var counts: [String: Int] = [:]
        if let text = m["counts"] {
            guard let obj = (try? JSONValue.parse(text))?.objectValue else {
                throw TraitVectorError.invalidMetadata(file: path, field: "counts", detail: "is not a JSON object")
            }
            for (k, v) in obj.pairs {
                guard let c = v.intValue else {
                    throw TraitVectorError.invalidMetadata(file: path, field: "counts", detail: "\"\(k)\" is not an integer")
                }
                counts[k] = c
            }
        }
        if let format = m["format"], format != formatName {
            throw TraitVectorError.invalidMetadata(file: path, field: "format", detail: "is \"\(format)\"; this version reads \"\(formatName)\"")
        }
        let trait = m["trait"] ?? url.deletingPathExtension().lastPathComponent
        var v = try TraitVector(trait: trait, values: values, model: m["model"], layer: layer, counts: counts,
                                settings: m["settings"] ?? "{}", source: path)
        v.tensorNameInFile = info.name
        if let config { try v.checkFits(config) }
        return v
    }
}
