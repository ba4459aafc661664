import NIOCore

/// Lays TargetPDU fields out as BHS bytes (§11) in `header` (an empty buffer) and hands the
/// data segment on unchanged.
enum TargetPDUEncoder {
    static func encode(_ pdu: TargetPDU, header buffer: consuming ByteBuffer,
                       allocator: ByteBufferAllocator) -> (header: OutboundHeader, data: ByteBuffer?) {
        switch pdu {
        case .nopIn(let p):
            var h = OutboundHeader(.nopIn, in: consume buffer)
            h.setLUN(p.lunField)
            h.setInitiatorTaskTag(p.initiatorTaskTag)
            h.setTargetTransferTag(p.targetTransferTag)
            h.setSequenceNumbers(p.numbers)
            return (h, p.data)
        case .scsiResponse(let p):
            var h = OutboundHeader(.scsiResponse, flags: 0x80 | p.residualFlags, in: consume buffer)
            h.set(p.response.rawValue, at: 2)
            h.set(p.status.rawValue, at: 3)
            h.setInitiatorTaskTag(p.initiatorTaskTag)
            h.setSequenceNumbers(p.numbers)
            h.set(p.expDataSN, at: 36)
            h.set(p.residualCount, at: 44)
            guard !p.sense.isEmpty else { return (h, nil) }
            // Sense data travels behind a two-byte SenseLength (§11.4.7.2).
            var data = allocator.buffer(capacity: p.sense.count + 2)
            data.writeInteger(UInt16(p.sense.count))
            data.writeBytes(p.sense)
            return (h, data)
        case .taskManagementResponse(let p):
            var h = OutboundHeader(.taskManagementResponse, in: consume buffer)
            h.set(p.response.rawValue, at: 2)
            h.setInitiatorTaskTag(p.initiatorTaskTag)
            h.setSequenceNumbers(p.numbers)
            return (h, nil)
        case .loginResponse(let r, let numbers):
            var h = OutboundHeader(.loginResponse, flags: 0, in: consume buffer)
            h.flags = (r.transit ? 0x80 : 0) | (r.continueFlag ? 0x40 : 0) | (r.currentStage & 0x03) << 2 | (r.nextStage & 0x03)
            h.set(r.versionMax, at: 2)
            h.set(r.versionActive, at: 3)
            h.set(r.isid << 16 | UInt64(r.tsih), at: 8)
            h.setInitiatorTaskTag(r.initiatorTaskTag)
            h.setSequenceNumbers(numbers)
            h.set(r.statusClass, at: 36)
            h.set(r.statusDetail, at: 37)
            var data = allocator.buffer(capacity: r.data.count)
            data.writeBytes(r.data)
            return (h, data)
        case .textResponse(let p):
            var h = OutboundHeader(.textResponse, flags: p.final ? 0x80 : 0x40, in: consume buffer)
            h.setLUN(p.lunField)
            h.setInitiatorTaskTag(p.initiatorTaskTag)
            h.setTargetTransferTag(p.targetTransferTag)
            h.setSequenceNumbers(p.numbers)
            return (h, p.data)
        case .dataIn(let p):
            var flags: UInt8 = p.final ? 0x80 : 0
            var h = OutboundHeader(.dataIn, flags: 0, in: consume buffer)
            h.setLUN(p.lunField)
            h.setInitiatorTaskTag(p.initiatorTaskTag)
            h.setTargetTransferTag(WireConstants.reservedTag)
            if let status = p.status {
                flags |= 0x01 | status.residualFlags
                h.set(status.status.rawValue, at: 3)
                h.setSequenceNumbers(p.numbers)
                h.set(status.residualCount, at: 44)
            } else {
                // Without status: StatSN is reserved (§11.7.6), the window still travels.
                h.set(p.numbers.expCmdSN, at: 28)
                h.set(p.numbers.maxCmdSN, at: 32)
            }
            h.flags = flags
            h.set(p.dataSN, at: 36)
            h.set(p.bufferOffset, at: 40)
            return (h, p.data)
        case .logoutResponse(let p):
            var h = OutboundHeader(.logoutResponse, in: consume buffer)
            h.set(p.response.rawValue, at: 2)
            h.setInitiatorTaskTag(p.initiatorTaskTag)
            h.setSequenceNumbers(p.numbers)
            // Time2Wait and Time2Retain stay 0: ErrorRecoveryLevel 0 keeps nothing (§11.15.2).
            return (h, nil)
        case .readyToTransfer(let p):
            var h = OutboundHeader(.readyToTransfer, in: consume buffer)
            h.setLUN(p.lunField)
            h.setInitiatorTaskTag(p.initiatorTaskTag)
            h.setTargetTransferTag(p.targetTransferTag)
            h.setSequenceNumbers(p.numbers)
            h.set(p.r2tSN, at: 36)
            h.set(p.bufferOffset, at: 40)
            h.set(p.desiredLength, at: 44)
            return (h, nil)
        case .asyncLogoutRequest(let seconds, let numbers):
            var h = OutboundHeader(.asyncMessage, in: consume buffer)
            h.setInitiatorTaskTag(WireConstants.reservedTag)
            h.setSequenceNumbers(numbers)
            h.set(AsyncEvent.logoutRequested.rawValue, at: 36)
            h.set(seconds, at: 42)  // Parameter3: time to logout (§11.9.1)
            return (h, nil)
        case .reject(let p):
            var h = OutboundHeader(.reject, in: consume buffer)
            h.set(p.reason.rawValue, at: 2)
            h.setInitiatorTaskTag(WireConstants.reservedTag)
            h.setSequenceNumbers(p.numbers)
            return (h, p.header)
        }
    }
}

extension OutboundHeader {
    mutating func setSequenceNumbers(_ n: SequenceNumbers) {
        setSequenceNumbers(statSN: n.statSN, expCmdSN: n.expCmdSN, maxCmdSN: n.maxCmdSN)
    }
}
