// TEMPORARY: stands in for the login branch until it is merged (then this file is deleted).
public struct LoginRequest: Sendable {
    public var transit: Bool
    public var continueFlag: Bool
    public var currentStage: UInt8
    public var nextStage: UInt8
    public var versionMax: UInt8
    public var versionMin: UInt8
    public var isid: UInt64
    public var tsih: UInt16
    public var initiatorTaskTag: UInt32
    public var cid: UInt16
    public var cmdSN: UInt32
    public var expStatSN: UInt32
    public var data: [UInt8]
    public init(transit: Bool, continueFlag: Bool, currentStage: UInt8, nextStage: UInt8, versionMax: UInt8, versionMin: UInt8, isid: UInt64, tsih: UInt16, initiatorTaskTag: UInt32, cid: UInt16, cmdSN: UInt32, expStatSN: UInt32, data: [UInt8]) {
        self.transit = transit; self.continueFlag = continueFlag; self.currentStage = currentStage; self.nextStage = nextStage
        self.versionMax = versionMax; self.versionMin = versionMin; self.isid = isid; self.tsih = tsih
        self.initiatorTaskTag = initiatorTaskTag; self.cid = cid; self.cmdSN = cmdSN; self.expStatSN = expStatSN; self.data = data
    }
}
public struct LoginResponse: Sendable {
    public var transit: Bool
    public var continueFlag: Bool
    public var currentStage: UInt8
    public var nextStage: UInt8
    public var versionMax: UInt8
    public var versionActive: UInt8
    public var isid: UInt64
    public var tsih: UInt16
    public var initiatorTaskTag: UInt32
    public var statusClass: UInt8
    public var statusDetail: UInt8
    public var data: [UInt8]
}
public enum LoginAction: Sendable {
    case respond(LoginResponse)
    case complete(LoginResponse, NegotiatedParameters)
    case fail(LoginResponse)
}
public struct LoginStateMachine {
    public init(directory: TargetDirectory, remoteAddress: String, targetPortalGroupTag: UInt16) {}
    public mutating func receiveLoginRequest(_ request: LoginRequest) -> LoginAction {
        fatalError("stub")
    }
}
public func sendTargetsResponse(request: [UInt8], directory: TargetDirectory, initiatorName: String, remoteAddress: String, sessionTarget: String?) -> [UInt8] {
    fatalError("stub")
}
