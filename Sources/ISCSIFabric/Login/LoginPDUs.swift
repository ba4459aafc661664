// The login PDUs as the login state machine sees them (RFC 7143 §11.12, §11.13): header fields
// that matter to login plus the data segment (text). Encoding to/from bytes belongs to the PDU
// codec; StatSN/ExpCmdSN/MaxCmdSN of responses are filled in by the connection.

/// A Login Request (opcode 0x03).
public struct LoginRequest: Sendable, Equatable {
    /// T bit: the initiator is ready to move to `nextStage`.
    public var transit: Bool
    /// C bit: the text continues in the next request.
    public var continueFlag: Bool
    /// CSG: 0 security negotiation, 1 operational negotiation.
    public var currentStage: UInt8
    /// NSG: meaningful only with `transit`; 1 operational, 3 full feature phase.
    public var nextStage: UInt8
    public var versionMax: UInt8
    public var versionMin: UInt8
    /// 48-bit ISID in the low 6 bytes.
    public var isid: UInt64
    public var tsih: UInt16
    public var initiatorTaskTag: UInt32
    public var cid: UInt16
    public var cmdSN: UInt32
    public var expStatSN: UInt32
    public var data: [UInt8]

    public init(transit: Bool, continueFlag: Bool, currentStage: UInt8, nextStage: UInt8,
                versionMax: UInt8, versionMin: UInt8, isid: UInt64, tsih: UInt16,
                initiatorTaskTag: UInt32, cid: UInt16, cmdSN: UInt32, expStatSN: UInt32, data: [UInt8]) {
        self.transit = transit
        self.continueFlag = continueFlag
        self.currentStage = currentStage
        self.nextStage = nextStage
        self.versionMax = versionMax
        self.versionMin = versionMin
        self.isid = isid
        self.tsih = tsih
        self.initiatorTaskTag = initiatorTaskTag
        self.cid = cid
        self.cmdSN = cmdSN
        self.expStatSN = expStatSN
        self.data = data
    }
}

/// A Login Response (opcode 0x23), without StatSN/ExpCmdSN/MaxCmdSN (the connection's).
public struct LoginResponse: Sendable, Equatable {
    public var transit: Bool
    public var continueFlag: Bool
    public var currentStage: UInt8
    /// Meaningful only with `transit`; 0 otherwise.
    public var nextStage: UInt8
    /// Always 0 (the only iSCSI version).
    public var versionMax: UInt8
    public var versionActive: UInt8
    public var isid: UInt64
    /// 0 from the state machine; the caller sets the session's TSIH in the final response.
    public var tsih: UInt16
    public var initiatorTaskTag: UInt32
    public var statusClass: UInt8
    public var statusDetail: UInt8
    public var data: [UInt8]

    public init(transit: Bool, continueFlag: Bool, currentStage: UInt8, nextStage: UInt8,
                versionMax: UInt8 = 0, versionActive: UInt8 = 0, isid: UInt64, tsih: UInt16,
                initiatorTaskTag: UInt32, statusClass: UInt8, statusDetail: UInt8, data: [UInt8]) {
        self.transit = transit
        self.continueFlag = continueFlag
        self.currentStage = currentStage
        self.nextStage = nextStage
        self.versionMax = versionMax
        self.versionActive = versionActive
        self.isid = isid
        self.tsih = tsih
        self.initiatorTaskTag = initiatorTaskTag
        self.statusClass = statusClass
        self.statusDetail = statusDetail
        self.data = data
    }

    public var status: LoginStatus { LoginStatus(statusClass: statusClass, statusDetail: statusDetail) }
}

/// What the connection does with a login request.
public enum LoginAction: Sendable, Equatable {
    /// Send the response; the login continues.
    case respond(LoginResponse)
    /// Final response: transit to full feature phase. The caller fills TSIH and StatSN fields.
    case complete(LoginResponse, NegotiatedParameters)
    /// Send the (reject) response, then close the connection.
    case fail(LoginResponse)
}

/// Login status class and detail (RFC 7143 §11.13.5).
public struct LoginStatus: Sendable, Hashable, CustomStringConvertible {
    public var statusClass: UInt8
    public var statusDetail: UInt8

    public init(statusClass: UInt8, statusDetail: UInt8) {
        self.statusClass = statusClass
        self.statusDetail = statusDetail
    }

    public var code: UInt16 { UInt16(statusClass) << 8 | UInt16(statusDetail) }
    public var description: String { "0x" + String(code, radix: 16).leftPadded(to: 4) }

    public static let success = LoginStatus(statusClass: 0x00, statusDetail: 0x00)
    public static let targetMovedTemporarily = LoginStatus(statusClass: 0x01, statusDetail: 0x01)
    public static let targetMovedPermanently = LoginStatus(statusClass: 0x01, statusDetail: 0x02)
    public static let initiatorError = LoginStatus(statusClass: 0x02, statusDetail: 0x00)
    public static let authenticationFailure = LoginStatus(statusClass: 0x02, statusDetail: 0x01)
    public static let authorizationFailure = LoginStatus(statusClass: 0x02, statusDetail: 0x02)
    public static let notFound = LoginStatus(statusClass: 0x02, statusDetail: 0x03)
    public static let targetRemoved = LoginStatus(statusClass: 0x02, statusDetail: 0x04)
    public static let unsupportedVersion = LoginStatus(statusClass: 0x02, statusDetail: 0x05)
    public static let tooManyConnections = LoginStatus(statusClass: 0x02, statusDetail: 0x06)
    public static let missingParameter = LoginStatus(statusClass: 0x02, statusDetail: 0x07)
    public static let cannotIncludeInSession = LoginStatus(statusClass: 0x02, statusDetail: 0x08)
    public static let sessionTypeNotSupported = LoginStatus(statusClass: 0x02, statusDetail: 0x09)
    public static let sessionDoesNotExist = LoginStatus(statusClass: 0x02, statusDetail: 0x0A)
    public static let invalidDuringLogin = LoginStatus(statusClass: 0x02, statusDetail: 0x0B)
    public static let targetError = LoginStatus(statusClass: 0x03, statusDetail: 0x00)
    public static let serviceUnavailable = LoginStatus(statusClass: 0x03, statusDetail: 0x01)
    public static let outOfResources = LoginStatus(statusClass: 0x03, statusDetail: 0x02)

    /// The meaning of the code in words (§11.13.5), for logs.
    public var reason: String {
        switch self {
        case .initiatorError: "initiator error"
        case .authenticationFailure: "authentication failed"
        case .authorizationFailure: "not authorized"
        case .notFound: "target not found"
        case .targetRemoved: "target removed"
        case .unsupportedVersion: "unsupported version"
        case .tooManyConnections: "too many connections"
        case .missingParameter: "missing parameter"
        case .cannotIncludeInSession: "cannot include in session"
        case .sessionTypeNotSupported: "session type not supported"
        case .sessionDoesNotExist: "session does not exist"
        case .invalidDuringLogin: "invalid request during login"
        case .targetError: "target error"
        case .serviceUnavailable: "service unavailable"
        case .outOfResources: "out of resources"
        default: "status \(description)"
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
