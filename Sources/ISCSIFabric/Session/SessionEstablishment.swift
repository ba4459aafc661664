import NIOCore
import SCSIEngine

/// What a completed login turns into: the session registered (TSIH, reinstatement of the
/// same ISID, §6.3.5), the nexus opened on the target's device, the target's ping settings.
/// Why a completed login could not become a session.
struct SessionRefusal: Error {
    var status: LoginStatus
}

struct EstablishedSession {
    var tsih: UInt16
    var parameters: NegotiatedParameters
    var device: SCSITarget?
    var nexus: NexusID?
    var nopInterval: TimeAmount?
    var nopTimeout: TimeAmount

    /// The session, or the login status that refuses it: 03/00 the target went away during
    /// login (or is not exposed on this address), 03/02 its session limit is reached.
    static func establish(_ negotiated: NegotiatedParameters, environment: ConnectionEnvironment, channel: any Channel,
                          remoteAddress: String, localAddress: String,
                          inFlight: SessionCounters) -> Result<EstablishedSession, SessionRefusal> {
        var parameters = negotiated
        var maxSessions = 0
        var device: SCSITarget?
        var nopInterval = environment.nopInInterval
        var nopTimeout = environment.nopInTimeout
        if negotiated.sessionType == .normal {
            guard let found = environment.catalog.device(named: negotiated.targetName),
                  let access = environment.catalog.access(named: negotiated.targetName),
                  access.isExposed(localAddress) else { return .failure(SessionRefusal(status: .targetError)) }
            device = found
            maxSessions = access.maxSessions
            if let cap = access.settings.maxXmitDataSegmentLength, cap > 0 {
                parameters.maxXmitDataSegmentLength = min(parameters.maxXmitDataSegmentLength, cap)
            }
            if let interval = access.nopInIntervalSeconds { nopInterval = interval > 0 ? .seconds(Int64(interval)) : nil }
            if let timeout = access.nopInTimeoutSeconds, timeout > 0 { nopTimeout = .seconds(Int64(timeout)) }
        }
        guard let (tsih, replaced) = environment.sessions.register(
            parameters, remoteAddress: remoteAddress, channel: channel, nexus: nil, localAddress: localAddress,
            localPort: channel.localAddress?.port ?? 0, maxSessions: maxSessions, inFlight: inFlight)
        else { return .failure(SessionRefusal(status: .outOfResources)) }
        var nexus: NexusID?
        if let device {
            nexus = device.openNexus(ITNexus(initiatorName: negotiated.initiatorName, initiatorPortID: negotiated.isid,
                                             targetName: negotiated.targetName,
                                             targetPortalGroupTag: environment.targetPortalGroupTag))
            environment.sessions.setNexus(nexus, tsih: tsih)
        }
        // Reinstatement: the old session's connection is closed.
        replaced?.close(promise: nil)
        return .success(EstablishedSession(tsih: tsih, parameters: parameters, device: device, nexus: nexus,
                                           nopInterval: nopInterval, nopTimeout: nopTimeout))
    }

    /// What the session state machine needs of the target: its LUNs (live) and its SendTargets answer.
    func sessionConfiguration(environment: ConnectionEnvironment, localAddress: String,
                              remoteAddress: String) -> SessionStateMachine.Configuration {
        let catalog = environment.catalog
        let device = self.device
        let parameters = self.parameters
        let sessionTarget = parameters.sessionType == .normal ? parameters.targetName : nil
        return SessionStateMachine.Configuration(
            parameters: parameters, servesCommands: nexus != nil, windowDepth: environment.commandWindowDepth,
            maxBufferedWriteBytes: environment.guards.limits.maxBufferedWriteBytesPerSession,
            lunExists: { [nexus] lun in
                guard let device, let nexus else { return false }
                return device.reaches(lun: lun, nexus: nexus)
            },
            answerText: { request in
                sendTargetsResponse(request: request, directory: catalog.directory(forLocalAddress: localAddress),
                                    initiatorName: parameters.initiatorName, remoteAddress: remoteAddress,
                                    sessionTarget: sessionTarget)
            })
    }
}
