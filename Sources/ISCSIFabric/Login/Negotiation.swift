// Operational parameter negotiation (RFC 7143 §6.2, §13): the target's side.
//
// The initiator offers keys; the target answers each with the result of the key's result
// function (min, max, AND, OR, first-supported-of-list) applied to the offer and the target's
// own preference, or with Reject / Irrelevant / NotUnderstood. Declarative keys
// (MaxRecvDataSegmentLength, names) are not answered. The target also makes its own offers for
// keys it wants at a non-default value that the initiator did not offer, and declares its own
// MaxRecvDataSegmentLength; negotiation is complete when every target offer has been answered.

public enum NegotiationError: Error, Sendable, Hashable {
    /// A key negotiated (or declared) a second time in one login (RFC 7143 §6.2.1 forbids it).
    case keyRenegotiated(String)
    /// The initiator answered a target offer with a value outside what was offered.
    case invalidAnswer(key: String, value: String)
    /// A declaration (MaxRecvDataSegmentLength) outside its range: it cannot be answered
    /// "Reject" (the target declares the same key itself), so the login fails (initiator error).
    case invalidDeclaration(key: String, value: String)
}

/// How one operational key is negotiated.
public enum NegotiationResultFunction: Sendable, Hashable {
    case minimum, maximum, and, or
    /// The responder picks the first value of the offered list that it supports.
    case list
    /// Declarative: no answer; each side states its own value.
    case declarative
    /// Not negotiated in operation: always answered with a fixed answer (e.g. markers).
    case fixed
}

/// Static description of an operational key: RFC range, default, result function.
public struct OperationalKeyInfo: Sendable, Hashable {
    public var key: String
    public var function: NegotiationResultFunction
    /// Numeric range (numeric keys only).
    public var range: ClosedRange<UInt32>?
    /// RFC default value as it appears in text.
    public var defaultValue: String
    /// The key is Irrelevant in discovery sessions.
    public var irrelevantInDiscovery: Bool

    /// The operational keys this target negotiates, by name.
    public static let all: [String: OperationalKeyInfo] = {
        let maxSegment: ClosedRange<UInt32> = 512...16_777_215
        let list: [OperationalKeyInfo] = [
            .init(key: "HeaderDigest", function: .list, range: nil, defaultValue: "None", irrelevantInDiscovery: false),
            .init(key: "DataDigest", function: .list, range: nil, defaultValue: "None", irrelevantInDiscovery: false),
            .init(key: "MaxConnections", function: .minimum, range: 1...65535, defaultValue: "1", irrelevantInDiscovery: true),
            .init(key: "InitialR2T", function: .or, range: nil, defaultValue: "Yes", irrelevantInDiscovery: true),
            .init(key: "ImmediateData", function: .and, range: nil, defaultValue: "Yes", irrelevantInDiscovery: true),
            .init(key: "MaxRecvDataSegmentLength", function: .declarative, range: maxSegment, defaultValue: "8192", irrelevantInDiscovery: false),
            .init(key: "MaxBurstLength", function: .minimum, range: maxSegment, defaultValue: "262144", irrelevantInDiscovery: true),
            .init(key: "FirstBurstLength", function: .minimum, range: maxSegment, defaultValue: "65536", irrelevantInDiscovery: true),
            .init(key: "DefaultTime2Wait", function: .maximum, range: 0...3600, defaultValue: "2", irrelevantInDiscovery: false),
            .init(key: "DefaultTime2Retain", function: .minimum, range: 0...3600, defaultValue: "20", irrelevantInDiscovery: false),
            .init(key: "MaxOutstandingR2T", function: .minimum, range: 1...65535, defaultValue: "1", irrelevantInDiscovery: true),
            .init(key: "DataPDUInOrder", function: .or, range: nil, defaultValue: "Yes", irrelevantInDiscovery: true),
            .init(key: "DataSequenceInOrder", function: .or, range: nil, defaultValue: "Yes", irrelevantInDiscovery: true),
            .init(key: "ErrorRecoveryLevel", function: .minimum, range: 0...2, defaultValue: "0", irrelevantInDiscovery: false),
            .init(key: "OFMarker", function: .and, range: nil, defaultValue: "No", irrelevantInDiscovery: false),
            .init(key: "IFMarker", function: .and, range: nil, defaultValue: "No", irrelevantInDiscovery: false),
            .init(key: "OFMarkInt", function: .fixed, range: nil, defaultValue: "2048", irrelevantInDiscovery: false),
            .init(key: "IFMarkInt", function: .fixed, range: nil, defaultValue: "2048", irrelevantInDiscovery: false),
            .init(key: "TaskReporting", function: .list, range: nil, defaultValue: "RFC3720", irrelevantInDiscovery: true),
        ]
        return Dictionary(uniqueKeysWithValues: list.map { ($0.key, $0) })
    }()
}

/// Keys handled by the login state machine rather than by operational negotiation.
enum LoginOnlyKeys {
    /// Declarations by the initiator at the start of the login.
    static let initiatorDeclarations: Set<String> = ["InitiatorName", "InitiatorAlias", "TargetName", "SessionType"]
    /// Declarations only the target makes; ignored (not answered) when an initiator sends them.
    static let targetDeclarations: Set<String> = ["TargetAlias", "TargetPortalGroupTag", "TargetAddress"]
    static func isSecurityKey(_ key: String) -> Bool {
        key == "AuthMethod" || key.hasPrefix("CHAP_") || key.hasPrefix("SRP_") || key.hasPrefix("KRB_")
            || key.hasPrefix("SPKM_")
    }
}

/// The target's side of operational negotiation for one login.
public struct OperationalNegotiation: Sendable {
    public let sessionType: SessionType
    public let settings: TargetLoginSettings
    /// Values settled so far (RFC defaults until negotiated).
    public private(set) var parameters: NegotiatedParameters
    /// Keys negotiated or declared by the initiator (each only once per login).
    private var negotiatedKeys: Set<String> = []
    /// Target offers awaiting the initiator's answer: key → offered value.
    private var awaitingAnswers: [String: String] = [:]
    /// Whether the target has made its offers and declarations.
    public private(set) var targetOffersMade = false

    public init(sessionType: SessionType, settings: TargetLoginSettings) {
        self.sessionType = sessionType
        self.settings = settings
        var p = NegotiatedParameters()
        p.sessionType = sessionType
        self.parameters = p
    }

    /// True while the target waits for answers to its own offers (it must not transit then).
    public var hasOutstandingOffers: Bool { !awaitingAnswers.isEmpty }

    /// Keys the target offers/declares, given what is negotiated so far. Does not change state.
    public var pendingTargetOffers: [TextKeyValue] { computeTargetOffers().map { $0.pair } }

    /// True if the target still has offers (not mere declarations) to make, which need an answer.
    public var needsToOffer: Bool { !targetOffersMade && computeTargetOffers().contains { !$0.declarative } }

    /// Processes the initiator's operational keys (login or text phase) and returns the target's
    /// answers, in the order of the offers. Answers to earlier target offers are consumed silently.
    public mutating func respond(to offers: [TextKeyValue]) throws(NegotiationError) -> [TextKeyValue] {
        var answers: [TextKeyValue?] = []
        var deferredFirstBurst: (index: Int, value: String)?
        for pair in offers {
            if let offered = awaitingAnswers.removeValue(forKey: pair.key) {
                try acceptAnswer(key: pair.key, offered: offered, answer: pair.value)
                negotiatedKeys.insert(pair.key)
                continue
            }
            guard negotiatedKeys.insert(pair.key).inserted else { throw .keyRenegotiated(pair.key) }
            if pair.key == "FirstBurstLength" {
                // Depends on MaxBurstLength, InitialR2T and ImmediateData: answer after the others.
                deferredFirstBurst = (answers.count, pair.value)
                answers.append(nil)
                continue
            }
            if info(pair.key)?.function == .declarative, !(sessionType == .discovery && info(pair.key)!.irrelevantInDiscovery),
               !(Self.number(pair.value).map { info(pair.key)!.range?.contains($0) ?? true } ?? false) {
                throw .invalidDeclaration(key: pair.key, value: pair.value)
            }
            answers.append(answer(key: pair.key, value: pair.value))
        }
        if let deferred = deferredFirstBurst {
            answers[deferred.index] = answer(key: "FirstBurstLength", value: deferred.value)
        }
        return answers.compactMap { $0 }
    }

    /// The target's own declarations and offers (made once, in the first operational response).
    /// Offers are remembered as awaiting answers.
    public mutating func makeTargetOffers() -> [TextKeyValue] {
        guard !targetOffersMade else { return [] }
        targetOffersMade = true
        let offers = computeTargetOffers()
        for offer in offers {
            if offer.declarative {
                apply(key: offer.pair.key, result: offer.pair.value)
            } else {
                awaitingAnswers[offer.pair.key] = offer.pair.value
            }
        }
        return offers.map { $0.pair }
    }

    /// The parameters to use in full feature phase, with cross-key constraints applied.
    public func finalParameters() -> NegotiatedParameters {
        var p = parameters
        p.firstBurstLength = min(p.firstBurstLength, p.maxBurstLength)
        return p
    }

    // MARK: - Answers

    private func info(_ key: String) -> OperationalKeyInfo? { OperationalKeyInfo.all[key] }

    /// The target's preferred value of `key`, in text, or nil for keys it has no preference on.
    private func targetValue(_ key: String) -> String? {
        let s = settings
        let maxSeg: UInt32 = 16_777_215
        func clamp(_ v: UInt32, _ r: ClosedRange<UInt32>) -> UInt32 { min(max(v, r.lowerBound), r.upperBound) }
        switch key {
        case "HeaderDigest": return supported(s.headerDigests).joined(separator: ",")
        case "DataDigest": return supported(s.dataDigests).joined(separator: ",")
        case "MaxConnections": return String(clamp(s.maxConnections, 1...65535))
        case "InitialR2T": return yesNo(s.initialR2T)
        case "ImmediateData": return yesNo(s.immediateData)
        case "MaxRecvDataSegmentLength": return String(clamp(s.maxRecvDataSegmentLength, 512...maxSeg))
        case "MaxBurstLength": return String(clamp(s.maxBurstLength, 512...maxSeg))
        case "FirstBurstLength":
            return String(min(clamp(s.firstBurstLength, 512...maxSeg), clamp(s.maxBurstLength, 512...maxSeg)))
        case "DefaultTime2Wait": return String(clamp(s.defaultTime2Wait, 0...3600))
        case "DefaultTime2Retain": return String(clamp(s.defaultTime2Retain, 0...3600))
        case "MaxOutstandingR2T": return String(clamp(s.maxOutstandingR2T, 1...65535))
        case "DataPDUInOrder", "DataSequenceInOrder": return "Yes"
        case "ErrorRecoveryLevel": return "0"
        case "OFMarker", "IFMarker": return "No"
        case "TaskReporting": return "RFC3720"
        default: return nil
        }
    }

    private func supported(_ digests: [String]) -> [String] {
        let known = digests.filter { $0 == "None" || $0 == "CRC32C" }
        return known.isEmpty ? ["None"] : known
    }

    /// The answer to an initiator offer of `key=value` (nil: no answer, e.g. declarations).
    private mutating func answer(key: String, value: String) -> TextKeyValue? {
        if LoginOnlyKeys.initiatorDeclarations.contains(key) || LoginOnlyKeys.targetDeclarations.contains(key) {
            return nil
        }
        guard let info = info(key) else { return TextKeyValue(key, "NotUnderstood") }
        if sessionType == .discovery && info.irrelevantInDiscovery {
            return TextKeyValue(key, "Irrelevant")
        }
        let mine = targetValue(key) ?? info.defaultValue
        switch info.function {
        case .fixed:
            // Markers are never enabled, so their intervals are irrelevant.
            return TextKeyValue(key, "Irrelevant")
        case .declarative:
            guard let v = Self.number(value), let r = info.range, r.contains(v) else {
                return TextKeyValue(key, "Reject")
            }
            parameters.maxXmitDataSegmentLength = v
            return nil
        case .list:
            let ours = TextKeys.listValues(mine)
            guard let choice = TextKeys.listValues(value).first(where: { ours.contains($0) }) else {
                return TextKeyValue(key, "Reject")
            }
            apply(key: key, result: choice)
            return TextKeyValue(key, choice)
        case .and, .or:
            guard let theirs = Self.bool(value), let ourBool = Self.bool(mine) else {
                return TextKeyValue(key, "Reject")
            }
            let result = info.function == .and ? (theirs && ourBool) : (theirs || ourBool)
            apply(key: key, result: yesNo(result))
            return TextKeyValue(key, yesNo(result))
        case .minimum, .maximum:
            guard let theirs = Self.number(value), let r = info.range, r.contains(theirs),
                  var ours = Self.number(mine)
            else { return TextKeyValue(key, "Reject") }
            if key == "FirstBurstLength" {
                if parameters.initialR2T && !parameters.immediateData {
                    return TextKeyValue(key, "Irrelevant")
                }
                ours = min(ours, parameters.maxBurstLength)
            }
            let result = info.function == .minimum ? min(theirs, ours) : max(theirs, ours)
            apply(key: key, result: String(result))
            return TextKeyValue(key, String(result))
        }
    }

    /// Handles the initiator's answer to a target offer.
    private mutating func acceptAnswer(key: String, offered: String, answer: String) throws(NegotiationError) {
        // The initiator declined: the key keeps its default.
        if answer == "Reject" || answer == "Irrelevant" || answer == "NotUnderstood" { return }
        guard let info = info(key) else { return }
        switch info.function {
        case .list:
            guard TextKeys.listValues(offered).contains(answer) else {
                throw .invalidAnswer(key: key, value: answer)
            }
            apply(key: key, result: answer)
        case .and, .or:
            guard let theirs = Self.bool(answer), let ours = Self.bool(offered) else {
                throw .invalidAnswer(key: key, value: answer)
            }
            apply(key: key, result: yesNo(info.function == .and ? theirs && ours : theirs || ours))
        case .minimum, .maximum:
            guard let theirs = Self.number(answer), let ours = Self.number(offered),
                  info.range?.contains(theirs) ?? false
            else { throw .invalidAnswer(key: key, value: answer) }
            apply(key: key, result: String(info.function == .minimum ? min(theirs, ours) : max(theirs, ours)))
        case .declarative, .fixed:
            return
        }
    }

    private struct TargetOffer {
        var pair: TextKeyValue
        var declarative: Bool
    }

    /// What the target would offer now: its MaxRecvDataSegmentLength declaration, plus every key
    /// not yet negotiated whose RFC default differs from the target's preference.
    private func computeTargetOffers() -> [TargetOffer] {
        var out: [TargetOffer] = []
        if let mrdsl = targetValue("MaxRecvDataSegmentLength") {
            out.append(TargetOffer(pair: TextKeyValue("MaxRecvDataSegmentLength", mrdsl), declarative: true))
        }
        let order = ["HeaderDigest", "DataDigest", "MaxConnections", "InitialR2T", "ImmediateData",
                     "MaxBurstLength", "FirstBurstLength", "DefaultTime2Wait", "DefaultTime2Retain",
                     "MaxOutstandingR2T"]
        for key in order where !negotiatedKeys.contains(key) {
            guard let info = info(key), var mine = targetValue(key) else { continue }
            if key == "FirstBurstLength", negotiatedKeys.contains("MaxBurstLength"), let v = Self.number(mine) {
                mine = String(min(v, parameters.maxBurstLength))
            }
            if sessionType == .discovery && info.irrelevantInDiscovery { continue }
            if info.function == .list {
                // Only offer a digest when the default (None) is not acceptable to the target.
                if TextKeys.listValues(mine).contains(info.defaultValue) { continue }
            } else if mine == info.defaultValue {
                continue
            }
            // FirstBurstLength is irrelevant when the outcome is InitialR2T=Yes and ImmediateData=No.
            if key == "FirstBurstLength" && parameters.initialR2T && !parameters.immediateData { continue }
            out.append(TargetOffer(pair: TextKeyValue(key, mine), declarative: false))
        }
        return out
    }

    /// Records a negotiated result in `parameters`.
    private mutating func apply(key: String, result: String) {
        switch key {
        case "HeaderDigest": parameters.headerDigest = result == "CRC32C"
        case "DataDigest": parameters.dataDigest = result == "CRC32C"
        case "MaxConnections": if let v = Self.number(result) { parameters.maxConnections = v }
        case "InitialR2T": if let v = Self.bool(result) { parameters.initialR2T = v }
        case "ImmediateData": if let v = Self.bool(result) { parameters.immediateData = v }
        case "MaxRecvDataSegmentLength": if let v = Self.number(result) { parameters.maxRecvDataSegmentLength = v }
        case "MaxBurstLength": if let v = Self.number(result) { parameters.maxBurstLength = v }
        case "FirstBurstLength": if let v = Self.number(result) { parameters.firstBurstLength = v }
        case "DefaultTime2Wait": if let v = Self.number(result) { parameters.defaultTime2Wait = v }
        case "DefaultTime2Retain": if let v = Self.number(result) { parameters.defaultTime2Retain = v }
        case "MaxOutstandingR2T": if let v = Self.number(result) { parameters.maxOutstandingR2T = v }
        case "DataPDUInOrder": if let v = Self.bool(result) { parameters.dataPDUInOrder = v }
        case "DataSequenceInOrder": if let v = Self.bool(result) { parameters.dataSequenceInOrder = v }
        case "ErrorRecoveryLevel": if let v = Self.number(result) { parameters.errorRecoveryLevel = UInt8(clamping: v) }
        default: break
        }
    }

    // MARK: - Value syntax

    private func yesNo(_ b: Bool) -> String { b ? "Yes" : "No" }

    static func bool(_ s: String) -> Bool? {
        switch s {
        case "Yes": return true
        case "No": return false
        default: return nil
        }
    }

    /// A numerical value: decimal-constant, or hex-constant "0x…" (RFC 7143 §6.1), up to 32 bits.
    static func number(_ s: String) -> UInt32? {
        let u = Array(s.utf8)
        if u.count > 2, u[0] == UInt8(ascii: "0"), u[1] == UInt8(ascii: "x") || u[1] == UInt8(ascii: "X") {
            let digits = String(decoding: u[2...], as: UTF8.self)
            guard digits.utf8.allSatisfy({ isHexDigit($0) }) else { return nil }
            return UInt32(digits, radix: 16)
        }
        guard !u.isEmpty, u.count <= 10, u.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return nil
        }
        return UInt32(s)
    }

    private static func isHexDigit(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "f"))
            || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "F"))
    }
}
