import Foundation
import MisalignIO

/// JSON form of onset reports (`misalign detect --scores --json`).
public enum OnsetJSON {
    static func num(_ v: Double?) -> JSONValue { v.map { .double($0) } ?? .null }
    static func interval(_ i: BootstrapInterval?) -> JSONValue {
        guard let i else { return .null }
        return .object(JSONObject([("low", .double(i.low)), ("high", .double(i.high)), ("defined_fraction", .double(i.definedFraction))]))
    }

    public static func report(_ r: OnsetReport) -> JSONValue {
        var o = JSONObject()
        o["dataset"] = r.dataset.map { .string($0) } ?? .null
        o["seed"] = r.seed.map { .int(Int64($0)) } ?? .null
        o["resamples"] = .int(Int64(r.resamples))
        o["signals"] = .array(r.signals.map { s in
            var so = JSONObject()
            so["signal"] = .string(s.signal)
            so["direction"] = .string(s.direction.rawValue)
            so["methods"] = .array(s.methods.map { m in
                .object(JSONObject([("method", .string(m.method)),
                                    ("index", m.index.map { .int(Int64($0)) } ?? .null),
                                    ("step", m.step.map { .int(Int64($0)) } ?? .null)]))
            })
            so["consensus_step"] = num(s.consensusStep)
            so["spread"] = s.spread.map { .array([.int(Int64($0.min)), .int(Int64($0.max))]) } ?? .null
            so["interval"] = interval(s.interval)
            return .object(so)
        })
        o["lag_steps"] = num(r.lagSteps)
        o["lag_interval"] = interval(r.lagInterval)
        o["p_lag_positive"] = num(r.probabilityLagPositive)
        return .object(o)
    }

    public static func reports(_ rs: [OnsetReport], datasets: [DatasetRow]?) -> JSONValue {
        var o = JSONObject()
        o["runs"] = .array(rs.map(report))
        if let d = datasets {
            o["datasets"] = .array(d.map { row in
                .object(JSONObject([
                    ("dataset", .string(row.dataset)), ("runs", .int(Int64(row.runs))),
                    ("median_onsets", .object(JSONObject(row.medianOnsets.sorted { $0.key < $1.key }.map { ($0.key, .double($0.value)) }))),
                    ("lags", .array(row.seeds.lags.map { .object(JSONObject([("seed", $0.seed.map { .int(Int64($0)) } ?? .null), ("lag", num($0.lag))])) })),
                    ("median_lag", num(row.seeds.medianLag)),
                    ("positive", .int(Int64(row.seeds.positive))), ("negative", .int(Int64(row.seeds.negative))),
                    ("sign_test_p", num(row.seeds.signTestP)),
                    ("mean_p_lag_positive", num(row.meanProbabilityLagPositive)),
                ]))
            })
        }
        return .object(o)
    }
}
