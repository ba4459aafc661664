// SendTargets (RFC 7143 §13.3 and Appendix C) in full feature phase Text Requests.
//
//   SendTargets=All      (discovery sessions) every target the initiator may see
//   SendTargets=<name>   that target, if the initiator may see it
//   SendTargets=         (normal sessions) the session's own target
//
// Each target is reported as TargetName=<name> followed by one TargetAddress=<host:port,tpgt>
// per portal. The result may exceed the initiator's MaxRecvDataSegmentLength: the caller splits
// it over several Text Responses (C bit; a key=value pair may span PDUs).

/// Builds the text data of the Text Response to a Text Request carrying `request`.
/// - Parameters:
///   - sessionTarget: the session's target for normal sessions, nil for discovery sessions.
/// Other keys are answered NotUnderstood; malformed text yields an empty answer.
public func sendTargetsResponse(request: [UInt8], directory: TargetDirectory, initiatorName: String,
                                remoteAddress: String, sessionTarget: String?) -> [UInt8] {
    guard let keys = try? TextKeys.parse(request) else { return [] }
    var out: [TextKeyValue] = []
    for pair in keys {
        guard pair.key == "SendTargets" else {
            out.append(TextKeyValue(pair.key, "NotUnderstood"))
            continue
        }
        let candidates: [TargetAccess]
        switch (pair.value, sessionTarget) {
        case ("All", nil):
            candidates = directory.targets
        case ("All", .some):
            // "All" is for discovery sessions only.
            out.append(TextKeyValue("SendTargets", "Reject"))
            continue
        case ("", let own?):
            candidates = directory.target(named: own).map { [$0] } ?? []
        case ("", nil):
            out.append(TextKeyValue("SendTargets", "Reject"))
            continue
        case (let name, _):
            candidates = directory.target(named: name).map { [$0] } ?? []
        }
        for target in candidates where target.isAllowed(initiatorName, remoteAddress) {
            out.append(TextKeyValue("TargetName", target.name))
            for portal in target.portals {
                out.append(TextKeyValue("TargetAddress", portal))
            }
        }
    }
    return TextKeys.encode(out)
}
