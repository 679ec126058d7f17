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
}
