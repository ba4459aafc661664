import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SCSIEngine

/// The listening side: portals, one ConnectionHandler per accepted connection, and a
/// polite shutdown (ask initiators to log out, let in-flight commands finish).
public final class ISCSIServer: Sendable {
    public let environment: ConnectionEnvironment
    private let group: any EventLoopGroup
    private let listeners: NIOLockedValueBox<[any Channel]>

    public init(environment: ConnectionEnvironment, group: any EventLoopGroup) {
        self.environment = environment
        self.group = group
        self.listeners = NIOLockedValueBox([])
        for target in environment.catalog.targets { attach(target.device) }
    }

    /// Lets the engine abort other sessions' tasks (PREEMPT AND ABORT, SPC-4 5.13.11.2.4).
    public func attach(_ device: SCSITarget) {
        let sessions = environment.sessions
        let name = device.name
        device.setAbortHandler { lun, nexuses in
            for channel in sessions.channels(of: nexuses, target: name) {
                channel.pipeline.fireUserInboundEventTriggered(AbortTasksEvent(lun: lun))
            }
        }
    }

    /// Starts listening on a portal; returns the bound address (port 0 picks a free one).
    @discardableResult
    public func listen(host: String, port: Int) async throws -> SocketAddress {
        let environment = self.environment
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let box = DigestSettingsBox()
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PDUDecoder(settings: box)))
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(environment: environment, digestBox: box))
                }
            }
            .bind(host: host, port: port)
            .get()
        listeners.withLockedValue { $0.append(channel) }
        return channel.localAddress!
    }

    /// Stops one listener (a portal removed from the configuration); sessions stay.
    public func stopListening(_ address: SocketAddress) async {
        let matching = listeners.withLockedValue { channels -> [any Channel] in
            let found = channels.filter { $0.localAddress == address }
            channels.removeAll { $0.localAddress == address }
            return found
        }
        for channel in matching { try? await channel.close() }
    }

    /// Stops accepting, asks every session to log out, waits up to `grace` for them to go,
    /// then closes what is left. In-flight commands complete on the I/O pool first.
    public func shutdown(grace: TimeAmount = .seconds(5)) async {
        let listening = listeners.withLockedValue { channels in
            defer { channels.removeAll() }
            return channels
        }
        for channel in listening { try? await channel.close() }
        let seconds = UInt16(max(1, grace.nanoseconds / 1_000_000_000))
        for channel in environment.sessions.channels {
            channel.pipeline.fireUserInboundEventTriggered(RequestLogoutEvent(seconds: seconds))
        }
        let deadline = NIODeadline.now() + grace
        while !environment.sessions.channels.isEmpty, NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        for channel in environment.sessions.channels { try? await channel.close() }
    }
}
