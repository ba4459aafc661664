/// Bookkeeping for a command's Data-Out phase (RFC 7143 §4.2.2.2 unsolicited data, §11.8 R2T):
/// immediate data, the unsolicited burst up to FirstBurstLength, then R2T-solicited bursts of
/// at most MaxBurstLength with at most MaxOutstandingR2T open at once. We negotiate
/// DataPDUInOrder=Yes and DataSequenceInOrder=Yes, so every sequence must arrive in order.
struct WriteTransfer {
    struct Limits {
        var initialR2T: Bool
        var firstBurstLength: Int
        var maxBurstLength: Int
        var maxOutstandingR2T: Int
    }

    /// One R2T the target sent and the data it still expects for it.
    struct Solicitation: Equatable {
        var targetTransferTag: UInt32
        var r2tSN: UInt32
        var offset: Int
        var length: Int
        var nextOffset: Int
        var nextDataSN: UInt32 = 0
    }

    enum DataOutError: Error, Equatable {
        /// TTT matches neither the unsolicited sequence nor an open R2T.
        case unknownTransferTag
        /// Offset, length or DataSN out of sequence, or past the expected length.
        case outOfOrder
    }

    let expectedLength: Int
    let limits: Limits
    /// Bytes received so far (sequences are in order, so this is also a prefix length).
    private(set) var received: Int
    /// True while the unsolicited Data-Out sequence is still open.
    private(set) var awaitingUnsolicited: Bool
    private var unsolicitedEnd: Int
    private var unsolicitedDataSN: UInt32 = 0
    private var nextR2TOffset: Int
    private(set) var open: [Solicitation] = []
    private var nextR2TSN: UInt32 = 0

    /// `immediateLength`: data in the command PDU. `commandFinal`: its F bit (no unsolicited
    /// Data-Out follows when set).
    init(expectedLength: Int, immediateLength: Int, commandFinal: Bool, limits: Limits) {
        self.expectedLength = expectedLength
        self.limits = limits
        received = min(immediateLength, expectedLength)
        let unsolicitedLimit = limits.initialR2T ? received : min(limits.firstBurstLength, expectedLength)
        unsolicitedEnd = max(unsolicitedLimit, received)
        awaitingUnsolicited = !commandFinal && received < unsolicitedEnd
        nextR2TOffset = awaitingUnsolicited ? unsolicitedEnd : received
    }

    var isComplete: Bool { received >= expectedLength }

    /// Number of R2Ts sent (the ExpDataSN of a write's response counts R2Ts, §11.4.8 note).
    var r2tCount: UInt32 { nextR2TSN }

    /// Accepts one Data-Out PDU; returns the buffer offset its bytes go to.
    mutating func receiveDataOut(targetTransferTag: UInt32, offset: Int, length: Int, dataSN: UInt32,
                                 final: Bool) throws(DataOutError) -> Int {
        guard offset >= 0, length >= 0, offset + length <= expectedLength else { throw .outOfOrder }
        if targetTransferTag == WireConstants.reservedTag {
            guard awaitingUnsolicited, offset == received, offset + length <= unsolicitedEnd,
                  dataSN == unsolicitedDataSN else { throw .outOfOrder }
            unsolicitedDataSN &+= 1
            received += length
            if final || received == unsolicitedEnd { awaitingUnsolicited = false }
            return offset
        }
        guard let index = open.firstIndex(where: { $0.targetTransferTag == targetTransferTag }) else {
            throw .unknownTransferTag
        }
        var r2t = open[index]
        guard offset == r2t.nextOffset, offset == received, offset + length <= r2t.offset + r2t.length,
              dataSN == r2t.nextDataSN else { throw .outOfOrder }
        r2t.nextOffset += length
        r2t.nextDataSN &+= 1
        received += length
        if r2t.nextOffset == r2t.offset + r2t.length {
            open.remove(at: index)
        } else {
            guard !final else { throw .outOfOrder }
            open[index] = r2t
        }
        return offset
    }

    /// R2Ts to send now, given fresh target transfer tags.
    mutating func solicit(nextTag: () -> UInt32) -> [Solicitation] {
        guard !awaitingUnsolicited else { return [] }
        var issued: [Solicitation] = []
        while open.count < limits.maxOutstandingR2T, nextR2TOffset < expectedLength {
            let length = min(limits.maxBurstLength, expectedLength - nextR2TOffset)
            let r2t = Solicitation(targetTransferTag: nextTag(), r2tSN: nextR2TSN, offset: nextR2TOffset,
                                   length: length, nextOffset: nextR2TOffset)
            nextR2TSN &+= 1
            nextR2TOffset += length
            open.append(r2t)
            issued.append(r2t)
        }
        return issued
    }
}
