import ArgumentParser
import Backstores
import Foundation
import ISCSIFabric
import Logging
import NIOCore
import NIOPosix
import SCSIEngine
import TargetConfig
import TargetRuntime

/// `swift-targetd serve`: the quick start. One target, LUNs from `--lun`, in the foreground.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve one target with the given LUNs until SIGTERM/SIGINT.",
        discussion: """
            Example:
              swift-targetd serve --listen 127.0.0.1:3260 --target iqn.2026-11.org.example:disk1 \\
                  \(BackstoreKind.allCases.map { "--lun " + $0.example }.joined(separator: " "))
            LUN specs: KIND:PATH[,size=N[K|M|G|T]][,ro][,direct] with KIND \(BackstoreKind.spokenList).
            """
    )

    @Option(help: "Portal to listen on, HOST:PORT (IPv6 as [ADDR]:PORT). Repeat for more portals.")
    var listen: [String] = ["127.0.0.1:3260"]

    @Option(help: "Target name (IQN).")
    var target: String = "iqn.2026-11.org.swifttarget:disk1"

    @Option(name: .customLong("lun"), help: "A logical unit, LUN 0, 1, ... in order (KIND:PATH[,size=…][,ro][,direct]).")
    var luns: [String] = []

    @Option(help: "Require one-way CHAP: USER:SECRET (the secret never appears in logs).")
    var chap: String?

    @Option(name: .customLong("mutual-chap"), help: "Mutual CHAP: the USER:SECRET the target answers with.")
    var mutualChap: String?

    @Option(help: "Digests the target accepts, comma separated: None, CRC32C (the initiator picks among them).")
    var digests: String = "None,CRC32C"

    @Option(help: "Seconds between NOP-In pings (0 disables).")
    var nopInterval: Int = 30

    @Option(help: ArgumentHelp("I/O worker threads (default: one per CPU, at least 2; 32 with rbd LUNs).",
                               discussion: "Page-cached files and fast SSDs do best with few threads (fewer context switches); raise it for slow or rotating devices. An rbd READ or WRITE is answered by librbd's callback; its other commands hold a worker while the cluster runs them."))
    var ioThreads: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Log lines as text or as one JSON object per line (json).")
    var logFormat: LogFormat = .text

    @Option(help: ArgumentHelp("This gateway's target port group (also its portal group tag and relative target port), 1…65535.",
                               discussion: "Several gateways exporting the same rbd image under the same target name each take their own number."))
    var portGroup: Int = 1

    @Option(help: "Every gateway's port group, comma separated (REPORT TARGET PORT GROUPS lists them all; default: this one).")
    var portGroups: String?

    @Option(help: ArgumentHelp("Directory for state kept through a restart: persistent reservations registered with APTPL and mode pages saved with MODE SELECT SP (files per LUN).",
                               discussion: "Without it, a REGISTER with APTPL set and a MODE SELECT with SP set are refused. Created 0700 when missing."))
    var stateDir: String?

    @OptionGroup(title: "Limits against guessing and exhaustion")
    var limits: LimitOptions

    /// Every gateway's port group, this one's included.
    var gatewayGroups: [UInt16] {
        get throws {
            guard let portGroups else { return [UInt16(portGroup)] }
            let groups = try portGroups.split(separator: ",").map { item -> UInt16 in
                guard let n = UInt16(item.trimmingCharacters(in: .whitespaces)), n >= 1 else {
                    throw ValidationError("--port-groups takes numbers 1…65535, comma separated (got '\(item)')")
                }
                return n
            }
            guard groups.contains(UInt16(portGroup)) else {
                throw ValidationError("--port-groups must include this gateway's --port-group \(portGroup)")
            }
            guard Set(groups).count == groups.count else { throw ValidationError("--port-groups lists a group twice") }
            return groups.sorted()
        }
    }

    func validate() throws {
        guard !luns.isEmpty else { throw ValidationError("give at least one --lun KIND:PATH[,size=…]") }
        // Every spec before anything is opened or created: a bad third LUN leaves no first file behind.
        for text in luns {
            do { _ = try BackstoreSpec.parse(text) } catch { throw ValidationError("--lun \(text): \(error)") }
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        guard IQN.isValid(target) else { throw ValidationError("'\(target)' is not a valid iSCSI name (iqn.YYYY-MM.reversed.domain[:id] or eui.16HEX)") }
        if mutualChap != nil && chap == nil { throw ValidationError("--mutual-chap needs --chap as well") }
        guard !digestList.isEmpty else { throw ValidationError("--digests takes None and/or CRC32C, comma separated") }
        if let ioThreads, !(1...256).contains(ioThreads) { throw ValidationError("--io-threads must be 1…256") }
        guard (1...65535).contains(portGroup) else { throw ValidationError("--port-group must be 1…65535") }
        _ = try gatewayGroups
    }

    func run() async throws {
        MemoryTuning.apply()
        // A stop asked for during the start is kept and carried out once the start is done.
        SignalWaiter.armTermination()
        bootstrapLogging(level: Logger.Level(rawValue: logLevel)!, format: logFormat)
        let logger = Logger(label: "swift-targetd")

        let portals = try listen.map { try Portal.parse($0) }
        let authentication = try Self.authentication(chap: chap, mutual: mutualChap, logger: logger)

        // Open every LUN before listening: a bad path fails the start, not the first login.
        let tag = UInt16(portGroup)
        let device = SCSITarget(name: target, portGroups: try gatewayGroups, transport: ISCSITransport())
        device.sanitizeBytesPerSecond = UInt64(limits.settings.resolved.sanitizeMBPerSecond ?? 0) << 20
        var stores: [any BlockStore] = []
        let specs = try luns.map { try BackstoreSpec.parse($0) }  // checked in validate()
        for (index, (text, spec)) in zip(luns, specs).enumerated() {
            let store: any BlockStore
            do { store = try openStore(for: spec) } catch {
                for opened in stores { opened.close() }
                throw DaemonError("LUN \(index) (\(text)): \(error)")
            }
            stores.append(store)
            let identity = LUNIdentity(target: target, lun: UInt64(index), path: spec.path)
            var unit = LogicalUnitConfiguration(serialNumber: identity.serialNumber, uniqueID: identity.uniqueID,
                                                readOnly: spec.readOnly)
            if let stateDir {
                unit.reservationPersistence = DurableFile(path: "\(stateDir)/\(identity.serialNumber).pr")
                unit.savedModePages = DurableFile(path: "\(stateDir)/\(identity.serialNumber).modepages")
            }
            do { try device.addLogicalUnit(UInt64(index), store: store, configuration: unit) } catch {
                for opened in stores { opened.close() }
                throw DaemonError("LUN \(index) (\(text)): \(error)")
            }
        }

        var settings = TargetLoginSettings()
        settings.targetPortalGroupTag = tag
        settings.headerDigests = digestList
        settings.dataDigests = digestList
        let access = TargetAccess(name: target, authentication: authentication, settings: settings,
                                  portals: portals.map { "\($0.advertised),\(tag)" })
        let catalog = TargetCatalog(targets: [ServedTarget(access: access, device: device)],
                                    discoveryAuthentication: authentication, discoverySettings: settings)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let ioPool = IOWorkerPool(threads: ioThreads ?? BackstoreKind.defaultIOThreads(
            for: stores.map(\.kind), processors: ProcessInfo.processInfo.activeProcessorCount))
        var environment = ConnectionEnvironment(catalog: catalog, sessions: SessionRegistry(), ioPool: ioPool, logger: logger)
        environment.nopInInterval = nopInterval > 0 ? .seconds(Int64(nopInterval)) : nil
        environment.targetPortalGroupTag = tag
        environment.guards = FabricGuards(limits: FabricLimits(limits.settings))
        let server = ISCSIServer(environment: environment, group: group)
        for portal in portals {
            do {
                try await server.listen(host: portal.host, port: portal.port)
            } catch let error as IOError where error.errnoCode == EADDRINUSE {
                throw DaemonError("cannot listen on \(portal.advertised): the port is already in use")
            } catch {
                throw DaemonError("cannot listen on \(portal.advertised): \(error)")
            }
            logger.info("listening", metadata: ["portal": "\(portal.advertised)"])
        }
        var urls = ""
        for (index, text) in luns.enumerated() {
            urls += "iscsi://\(portals[0].advertised)/\(target)/\(index)    (\(text))\n"
        }
        FileHandle.standardOutput.write(Data(urls.utf8))

        await SignalWaiter.waitForTermination()
        logger.notice("shutting down: asking initiators to log out")
        await server.shutdown(grace: .seconds(5))
        ioPool.shutdown()  // in-flight commands complete before the stores are flushed
        for store in stores {
            do { try store.flush() } catch { logger.error("flush failed: \(error)") }
            store.close()
        }
        try? await group.shutdownGracefully()
        logger.notice("stopped")
    }

    /// `--digests` in canonical spelling; empty when it names anything else.
    var digestList: [String] {
        var list: [String] = []
        for item in digests.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
            switch item {
            case "none": list.append("None")
            case "crc32c": list.append("CRC32C")
            default: return []
            }
        }
        return list
    }

    static func authentication(chap: String?, mutual: String?, logger: Logger) throws -> AuthenticationPolicy {
        guard let chap else { return .none }
        let incoming = try Credential.parse(chap, option: "--chap")
        var policy = AuthenticationPolicy(incomingUsers: [incoming.user: incoming.secret])
        if let mutual {
            let outgoing = try Credential.parse(mutual, option: "--mutual-chap")
            guard outgoing.secret != incoming.secret else {
                throw DaemonError("--mutual-chap must use a different secret than --chap (RFC 7143 §12.1.3)")
            }
            policy.outgoingUser = (outgoing.user, outgoing.secret)
        }
        for (name, secret) in [(incoming.user, incoming.secret)] + (policy.outgoingUser.map { [($0.name, $0.secret)] } ?? [])
        where secret.utf8.count < 12 {
            logger.warning("CHAP secret of '\(name)' is shorter than 12 bytes; Windows initiators refuse it")
        }
        return policy
    }
}

/// An error for the admin: printed as is, exit status 1.
struct DaemonError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
