import Foundation

/// The legend under a `LineChart`: one entry per series and marker, packed into rows by an
/// estimate of each label's width (SVG cannot measure text without a script).
struct ChartLegend {
    struct Entry { var label: String; var color: String; var dash: String?; var lineWidth: Double; var band: Bool }
    struct Placed { var entry: Entry; var x: Double; var row: Int }

    static let rowHeight = 15.0
    /// Average advance of an 11 px Helvetica glyph, a little generous so labels never collide.
    static let charWidth = 6.3

    var placed: [Placed]
    var rows: Int
    var height: Double { rows == 0 ? 0 : Double(rows) * Self.rowHeight + 4 }

    /// `s` cut with an ellipsis to about `width` px of 11 px text: a long dataset or method
    /// name must not run past the figure's edge.
    static func fit(_ s: String, width: Double, charWidth: Double = ChartLegend.charWidth) -> String {
        let n = max(4, Int(width / charWidth))
        return s.count <= n ? s : String(s.prefix(n - 1)) + "\u{2026}"
    }

    init(entries: [Entry], maxWidth: Double) {
        var placed: [Placed] = []
        var x = 0.0, row = 0
        for var e in entries {
            e.label = Self.fit(e.label, width: maxWidth - 40)
            let w = 24 + Double(e.label.count) * Self.charWidth + 14
            if x > 0 && x + w > maxWidth { row += 1; x = 0 }
            placed.append(Placed(entry: e, x: x, row: row))
            x += w
        }
        self.placed = placed
        rows = entries.isEmpty ? 0 : row + 1
    }

    func svg(originX: Double, originY: Double) -> String {
        let c = Markup.coord
        var s = ""
        for p in placed {
            let x = originX + p.x, y = originY + Double(p.row) * Self.rowHeight
            if p.entry.band {
                s += "<rect x=\"\(c(x))\" y=\"\(c(y - 5))\" width=\"18\" height=\"10\" fill=\"\(p.entry.color)\" fill-opacity=\"0.18\"/>"
            }
            s += "<line x1=\"\(c(x))\" y1=\"\(c(y))\" x2=\"\(c(x + 18))\" y2=\"\(c(y))\" stroke=\"\(p.entry.color)\" stroke-width=\"\(c(max(1.6, p.entry.lineWidth)))\""
            s += (p.entry.dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") + "/>"
            s += "<text x=\"\(c(x + 23))\" y=\"\(c(y + 3.5))\" fill=\"#333\">\(Markup.escape(p.entry.label))</text>"
        }
        return s
    }
}

extension LineChart {
    func legendLayout(maxWidth: Double) -> ChartLegend {
        var entries = series.map {
            ChartLegend.Entry(label: $0.label, color: $0.color, dash: $0.dashed ? "5 3" : nil, lineWidth: 1.6,
                              band: $0.points.contains { $0.low != nil })
        }
        entries += markers.map { ChartLegend.Entry(label: $0.label, color: $0.color, dash: $0.dash, lineWidth: $0.lineWidth, band: false) }
        return ChartLegend(entries: entries, maxWidth: maxWidth)
    }
}
