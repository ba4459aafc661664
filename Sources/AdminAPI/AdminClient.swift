import AdminCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Errors of the API client: the daemon answered with an error, or could not be reached.
public enum AdminClientError: Error, Sendable, CustomStringConvertible {
    case unreachable(path: String, reason: String)
    case api(AdminError)
    case badResponse(String)

    public var description: String {
        switch self {
        case .unreachable(let path, let reason): return "cannot reach swift-targetd at \(path): \(reason)"
        case .api(let e): return e.message
        case .badResponse(let s): return "unexpected answer from swift-targetd: \(s)"
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .unreachable: return CtlExitCode.unreachable
        case .api(let e): return e.kind.exitCode
        case .badResponse: return CtlExitCode.failure
        }
    }
}

/// A small HTTP/1.1 client over the daemon's Unix socket (one request per connection).
public struct AdminClient: Sendable {
    public var socketPath: String
    public var timeout: TimeAmount

    public init(socketPath: String = defaultAPISocketPath, timeout: TimeAmount = .seconds(60)) {
        self.socketPath = socketPath
        self.timeout = timeout
    }

    /// Sends a request; returns the status and body. Throws `.unreachable` when the socket
    /// cannot be connected to.
    public func send(_ method: HTTPMethod, _ path: String, body: Data? = nil) async throws -> (status: Int, body: Data) {
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: (Int, Data).self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(5))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                    }
                }
                .connect(unixDomainSocketPath: socketPath)
                .get()
        } catch {
            promise.fail(error)
            throw AdminClientError.unreachable(path: socketPath, reason: Self.reason(error))
        }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "localhost")
        head.headers.add(name: "Connection", value: "close")
        head.headers.add(name: "Accept", value: "application/json")
        if let body {
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: "\(body.count)")
        } else if method == .POST || method == .PUT || method == .PATCH {
            head.headers.add(name: "Content-Length", value: "0")
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let timeoutTask = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        defer { timeoutTask.cancel() }
        let (status, data) = try await promise.futureResult.get()
        try? await channel.close()
        return (status, data)
    }

    static func reason(_ error: any Error) -> String {
        if let e = error as? IOError { return String(cString: strerror(e.errnoCode)) }
        if case ChannelError.connectTimeout = error { return "connection timed out" }
        return "\(error)"
    }

    /// Sends a request and decodes a 2xx answer as `T`; an error answer throws `.api`.
    public func call<T: Decodable>(_ method: HTTPMethod, _ path: String, body: (some Encodable)? = Optional<String>.none,
                                   as type: T.Type = T.self) async throws -> T {
        let data = try await raw(method, path, body: body)
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw AdminClientError.badResponse("\(error)")
        }
    }

    /// As `call`, returning the JSON text of a 2xx answer.
    public func raw(_ method: HTTPMethod, _ path: String, body: (some Encodable)? = Optional<String>.none) async throws -> Data {
        try await raw(method, path, bodyData: try body.map { try JSONEncoder().encode($0) })
    }

    /// As `raw`, with a body that is JSON already (a configuration file).
    public func raw(_ method: HTTPMethod, _ path: String, bodyData encoded: Data?) async throws -> Data {
        let (status, data) = try await send(method, path, body: encoded)
        guard (200..<300).contains(status) else {
            if let e = try? JSONDecoder().decode(APIErrorBody.self, from: data) {
                throw AdminClientError.api(AdminError(AdminError.Kind(rawValue: e.error) ?? .init(httpStatus: status), e.message))
            }
            throw AdminClientError.api(AdminError(.init(httpStatus: status), "HTTP \(status): \(String(decoding: data, as: UTF8.self))"))
        }
        return data
    }

    /// Percent-encodes one path segment (target names contain ':' and '.', which are fine).
    public static func segment(_ s: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove("/")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}

private final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<(Int, Data)>
    private var status = 0
    private var body = Data()
    private var done = false

    init(promise: EventLoopPromise<(Int, Data)>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(let buffer): body.append(contentsOf: buffer.readableBytesView)
        case .end:
            if !done { done = true; promise.succeed((status, body)) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done { done = true; promise.fail(AdminClientError.badResponse("the daemon closed the connection without answering")) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done { done = true; promise.fail(AdminClientError.badResponse("\(error)")) }
        context.close(promise: nil)
    }
}
