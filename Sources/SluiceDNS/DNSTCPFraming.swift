// DNS over TCP frames every message with a 2-byte big-endian length (RFC 1035 section 4.2.2, RFC 7766).
// This decoder cuts the stream into messages for both the proxy's TCP listener and its TCP upstream client.
import NIOCore

/// Splits a TCP byte stream into DNS messages (without the length prefix). Runs on its channel's event loop.
struct DNSTCPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        // A partial message at EOF is discarded: there is nobody left to answer.
        try decode(context: context, buffer: &buffer)
    }
}

extension ByteBuffer {
    /// A DNS message with its TCP length prefix.
    static func dnsTCPFrame(_ message: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: message.count + 2)
        buffer.writeInteger(UInt16(truncatingIfNeeded: message.count))
        buffer.writeBytes(message)
        return buffer
    }
}
