import Foundation

/// Unicode NFC, the `NFC` normalizer of tokenizer.json.
///
/// Most text is already NFC, and Foundation's normalization allocates a new string. A scalar
/// that has NFC_Quick_Check = Yes, canonical combining class 0 and that never appears as the
/// second half of a canonical composition leaves its neighbourhood unchanged, so text made only
/// of such scalars is returned as is. The ranges below are a conservative subset (Latin-1 and
/// spacing letters, kana, CJK ideographs, Hangul syllables); anything else takes the slow path.
@inline(__always)
func isNFCInert(_ c: UInt32) -> Bool {
    if c < 0x300 { return true }
    if c >= 0x4E00 && c <= 0x9FFF { return true }
    if c >= 0xAC00 && c <= 0xD7A3 { return true }
    if c >= 0x3041 && c <= 0x3096 { return true }
    if c >= 0x30A1 && c <= 0x30FA { return true }
    return false
}

/// True when every scalar of the UTF-8 text is NFC-inert, so NFC would not change it.
func isTriviallyNFC(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    var p = 0
    let n = bytes.count
    while p < n {
        let b0 = UInt32(bytes[p])
        if b0 < 0x80 { p += 1; continue }
        var c: UInt32
        if b0 < 0xE0 { c = (b0 & 0x1F) << 6 | UInt32(bytes[p + 1] & 0x3F); p += 2 }
        else if b0 < 0xF0 {
            c = (b0 & 0x0F) << 12 | UInt32(bytes[p + 1] & 0x3F) << 6 | UInt32(bytes[p + 2] & 0x3F); p += 3
        } else { return false }
        if !isNFCInert(c) { return false }
    }
    return true
}

/// NFC of valid UTF-8 bytes, as UTF-8 bytes.
func nfcNormalize(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
    let s = String(decoding: bytes, as: UTF8.self)
    return Array(s.precomposedStringWithCanonicalMapping.utf8)
}
