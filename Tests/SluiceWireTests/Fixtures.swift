// Loads the captured hex fixtures (Fixtures/, see Fixtures/README.md) and provides the seeded random
// generator the mutation fuzz tests share, so every run explores the same inputs.
import Foundation
import SluicePolicyGen

enum Fixture {
    /// The lines of `Fixtures/<path>` decoded from hex: one datagram or one TCP read per line.
    static func chunks(_ path: String) -> [[UInt8]] {
        guard let base = Bundle.module.url(forResource: "Fixtures", withExtension: nil),
              let text = try? String(contentsOf: base.appendingPathComponent(path), encoding: .utf8)
        else { return [] }
        return text.split(separator: "\n").map { line in
            var bytes: [UInt8] = []
            var chars = line.utf8.makeIterator()
            while let high = chars.next(), let low = chars.next() {
                bytes.append(UInt8(hexDigit(high) << 4 | hexDigit(low)))
            }
            return bytes
        }
    }

    /// All chunks of a fixture concatenated: the byte stream of one TCP direction.
    static func stream(_ path: String) -> [UInt8] {
        chunks(path).flatMap { $0 }
    }

    /// Names of the fixture files in `Fixtures/<directory>`, sorted.
    static func names(in directory: String) -> [String] {
        guard let base = Bundle.module.url(forResource: "Fixtures", withExtension: nil),
              let list = try? FileManager.default.contentsOfDirectory(
                  atPath: base.appendingPathComponent(directory).path)
        else { return [] }
        return list.filter { $0.hasSuffix(".hex") }.sorted()
    }

    private static func hexDigit(_ c: UInt8) -> Int {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(c - UInt8(ascii: "a") + 10)
        default: 0
        }
    }
}

/// The project's seeded generator (SplitMix64), so a fuzz failure reproduces from its seed.
typealias SeededGenerator = SeededRandom

/// Applies one to four random edits of the kinds that break parsers: bit flips, random bytes,
/// compression-pointer-shaped bytes, insertions, deletions, truncation and length-field extremes.
func mutate(_ input: [UInt8], using rng: inout SeededGenerator) -> [UInt8] {
    var bytes = input
    for _ in 0..<Int.random(in: 1...4, using: &rng) {
        guard !bytes.isEmpty else { bytes.append(UInt8.random(in: 0...255, using: &rng)); continue }
        let index = Int.random(in: 0..<bytes.count, using: &rng)
        switch Int.random(in: 0..<8, using: &rng) {
        case 0: bytes[index] ^= 1 << UInt8.random(in: 0...7, using: &rng)
        case 1: bytes[index] = UInt8.random(in: 0...255, using: &rng)
        case 2: bytes[index] = 0xC0 | UInt8.random(in: 0...0x3F, using: &rng)
        case 3: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: index)
        case 4: bytes.remove(at: index)
        case 5: bytes.removeLast(Int.random(in: 0...(bytes.count - index), using: &rng))
        case 6: bytes[index] = [0x00, 0xFF, 0x7F, 0x80, 0x3F, 0x40][Int.random(in: 0..<6, using: &rng)]
        default:
            let other = Int.random(in: 0..<bytes.count, using: &rng)
            bytes.swapAt(index, other)
        }
    }
    return bytes
}
