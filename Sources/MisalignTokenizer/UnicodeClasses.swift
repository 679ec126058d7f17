/// Character classes of the Qwen2 split pattern, per code point.
///
/// The regex `\p{L}`, `\p{N}` and `\s` are evaluated by Oniguruma inside HF tokenizers, with
/// that engine's Unicode version; the tables in `UnicodeTables.swift` are extracted from the
/// engine itself so unassigned and newly assigned code points split exactly as in HF.
enum CharClass {
    static let other: UInt8 = 0
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let space: UInt8 = 3
}

/// One byte per code point (1.1 MB): a flat table beats binary search in the pre-tokenizer's
/// inner loop and costs about a millisecond to build once.
let qwenCharClass: [UInt8] = {
    var table = [UInt8](repeating: CharClass.other, count: 0x110000)
    func fill(_ ranges: [UInt32], _ cls: UInt8) {
        var i = 0
        while i < ranges.count {
            for c in ranges[i]...ranges[i + 1] { table[Int(c)] = cls }
            i += 2
        }
    }
    fill(qwenLetterRanges, CharClass.letter)
    fill(qwenNumberRanges, CharClass.number)
    fill(qwenSpaceRanges, CharClass.space)
    return table
}()
