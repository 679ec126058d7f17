/// GPT-2's `bytes_to_unicode`: byte-level BPE vocabularies spell every byte as a printable
/// character so that merges can be stored as text. Printable Latin-1 bytes map to themselves and
/// the other 68 bytes (controls, space, 0x7F-0xA0, 0xAD) to U+0100 onwards, in byte order.
/// HF keeps this exact table; any other order would scramble every vocabulary.
let byteLevelByteToScalar: [UInt32] = {
    var table = [UInt32](repeating: 0, count: 256)
    var next: UInt32 = 256
    for b in 0..<256 {
        let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
        if printable { table[b] = UInt32(b) } else { table[b] = next; next += 1 }
    }
    return table
}()

/// The inverse of `byteLevelByteToScalar`, for code points below 0x144 (the largest one used).
let byteLevelScalarToByte: [Int16] = {
    var table = [Int16](repeating: -1, count: 0x144)
    for (b, s) in byteLevelByteToScalar.enumerated() { table[Int(s)] = Int16(b) }
    return table
}()

/// The raw bytes a vocabulary token stands for, as HF's ByteLevel decoder computes them: every
/// character mapped back through the byte table, or — when any character is outside the table,
/// as in added tokens like "<|im_end|>" written in plain text — the token's own UTF-8 bytes.
func byteLevelDecode(_ token: String) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(token.utf8.count)
    for scalar in token.unicodeScalars {
        let v = scalar.value
        guard v < 0x144, byteLevelScalarToByte[Int(v)] >= 0 else { return Array(token.utf8) }
        out.append(UInt8(byteLevelScalarToByte[Int(v)]))
    }
    return out
}

/// The byte-level spelling of raw bytes (used for error messages and vocabulary lookups).
func byteLevelEncode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    var s = String.UnicodeScalarView()
    for b in bytes { s.append(Unicode.Scalar(byteLevelByteToScalar[Int(b)])!) }
    return String(s)
}
