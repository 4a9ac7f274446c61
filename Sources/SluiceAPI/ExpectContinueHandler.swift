// Answers `Expect: 100-continue` at once. curl sends it with every body over 1 MiB (a policy of a
// few thousand rules) and then waits up to a second for the server's go-ahead before sending the
// body; the spec's curl commands would stall a second on every large policy write otherwise.
// Every request that gets here may send its body: the size limit and authentication are checked
// by the routes as for any other request (RFC 9110 10.1.1 lets a server always continue).
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Sends `100 Continue` for a request head that asks for it, then passes the request on without
/// the expectation. Sits in the HTTP/1 pipeline after the HTTP types codec.
final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var request) = unwrapInboundIn(data),
              let expectation = request.headerFields[.expect], expectation.lowercased() == "100-continue"
        else {
            context.fireChannelRead(data)
            return
        }
        request.headerFields[.expect] = nil
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        context.fireChannelRead(wrapInboundOut(.head(request)))
    }
}
