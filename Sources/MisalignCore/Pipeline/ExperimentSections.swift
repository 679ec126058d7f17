import Foundation

extension Experiment {
    static func parseAggregation(_ n: YAMLNode?) throws(PipelineError) -> AggregationSettings {
        var a = AggregationSettings()
        guard let n = try n?.mapping() else { return a }
        if let v = try n.optional("confidence") { a.confidence = try v.double(in: 0.5...0.9999, "in [0.5, 1)") }
        if let v = try n.optional("threshold") { a.threshold = try v.double() }
        if let c = try n.optional("coherence_filter") {
            _ = try c.mapping()
            if let v = try c.optional("mode") {
                guard let m = AggregationSettings.CoherenceFilter(rawValue: try v.string()) else { throw v.error("must be none or exclude") }
                a.coherenceFilter = m
            }
            if let v = try c.optional("trait") { a.coherenceTrait = try v.string() }
            if let v = try c.optional("min") { a.coherenceMin = try v.double() }
            try c.rejectUnknown()
        }
        if let m = try n.optional("misaligned") {
            _ = try m.mapping()
            if let v = try m.optional("trait") { a.misalignedTrait = try v.string() }
            if let v = try m.optional("above") { a.misalignedAbove = try v.double() }
            if let v = try m.optional("coherent_above") { a.coherentAbove = try v.double() }
            try m.rejectUnknown()
        }
        try n.rejectUnknown()
        return a
    }

    static func parseDetection(_ n: YAMLNode?) throws(PipelineError) -> DetectionSettings {
        var d = DetectionSettings()
        guard let n = try n?.mapping() else { return d }
        if let v = try n.optional("methods") {
            d.methods = try v.strings()
            for m in d.methods where !DetectionSettings.allMethods.contains(m) {
                throw v.error("unknown method `\(m)`; use \(DetectionSettings.allMethods.joined(separator: ", "))")
            }
            if d.methods.isEmpty { throw v.error("is empty") }
        }
        if let v = try n.optional("resamples") { d.resamples = try v.int(min: 0, max: Bounds.resamples) }
        if let v = try n.optional("seed") { d.seed = UInt64(try v.int(min: 0)) }
        if let v = try n.optional("confidence") { d.confidence = try v.double(in: 0.5...0.9999, "in [0.5, 1)") }
        if let v = try n.optional("scale") { d.scale = try v.double(in: 1e-9...1e9, "> 0") }
        if let v = try n.optional("lead") { d.lead = try v.string() }
        if let v = try n.optional("lag") { d.lag = try v.string() }
        if let v = try n.optional("min_agreeing") { d.minAgreeing = try v.int(min: 1, max: DetectionSettings.allMethods.count) }
        if let v = try n.optional("judge") { d.judge = JudgeSpec.canonicalName(try v.string()) }
        if let dirs = try n.optional("directions") {
            for (trait, v) in try dirs.entries() {
                guard let dir = Direction(rawValue: try v.string()) else { throw v.error("must be up or down") }
                d.directions[trait] = dir
            }
        }
        try n.rejectUnknown()
        return d
    }
}
