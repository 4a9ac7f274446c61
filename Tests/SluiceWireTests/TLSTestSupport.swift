// Builders for hand-made TLS records and hellos used by the hostile-input tests.
@testable import SluiceWire

enum TLSBytes {
    static func vector(_ prefix: Int, _ bytes: [UInt8]) -> [UInt8] {
        let n = bytes.count
        switch prefix {
        case 1: return [UInt8(truncatingIfNeeded: n)] + bytes
        case 2: return [UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)] + bytes
        default:
            return [UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
                + bytes
        }
    }

    static func record(_ payload: [UInt8], type: UInt8 = 22, version: [UInt8] = [3, 1]) -> [UInt8] {
        [type] + version + vector(2, payload)
    }

    static func handshake(_ type: UInt8, _ body: [UInt8]) -> [UInt8] {
        [type] + vector(3, body)
    }

    static func ext(_ type: UInt16, _ data: [UInt8]) -> [UInt8] {
        [UInt8(type >> 8), UInt8(type & 0xFF)] + vector(2, data)
    }

    static func sni(_ names: [(UInt8, [UInt8])]) -> [UInt8] {
        ext(0, vector(2, names.flatMap { [$0.0] + vector(2, $0.1) }))
    }

    static func sni(_ name: String) -> [UInt8] { sni([(0, Array(name.utf8))]) }

    static func clientHelloBody(sessionID: [UInt8] = [], suites: [UInt8] = [0x13, 0x01, 0x13, 0x02],
                                compression: [UInt8] = [0], extensions: [[UInt8]]? = []) -> [UInt8] {
        var body: [UInt8] = [3, 3] + [UInt8](repeating: 0xAB, count: 32)
        body += vector(1, sessionID) + vector(2, suites) + vector(1, compression)
        if let extensions { body += vector(2, extensions.flatMap { $0 }) }
        return body
    }

    /// Splits a message over records of at most `size` payload bytes.
    static func records(_ message: [UInt8], size: Int) -> [UInt8] {
        stride(from: 0, to: message.count, by: size).flatMap { start in
            record(Array(message[start..<min(start + size, message.count)]))
        }
    }
}
