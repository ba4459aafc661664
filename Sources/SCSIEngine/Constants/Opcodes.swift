/// Operation codes (SPC-4 annex D.3.1, SBC-3 5.1 table 12).
enum Opcode {
    static let testUnitReady: UInt8 = 0x00          // SPC-4 6.47
    static let requestSense: UInt8 = 0x03           // SPC-4 6.39
    static let read6: UInt8 = 0x08                  // SBC-3 5.13
    static let write6: UInt8 = 0x0A                 // SBC-3 5.37
    static let inquiry: UInt8 = 0x12                // SPC-4 6.6
    static let modeSelect6: UInt8 = 0x15            // SPC-4 6.9
    static let reserve6: UInt8 = 0x16               // SPC-2 7.21
    static let release6: UInt8 = 0x17               // SPC-2 7.16
    static let modeSense6: UInt8 = 0x1A             // SPC-4 6.11
    static let startStopUnit: UInt8 = 0x1B          // SBC-3 5.25
    static let sendDiagnostic: UInt8 = 0x1D         // SPC-4 6.42
    static let preventAllowMediumRemoval: UInt8 = 0x1E
    static let readCapacity10: UInt8 = 0x25         // SBC-3 5.15
    static let readDefectData10: UInt8 = 0x37       // SBC-3 5.17
    static let readDefectData12: UInt8 = 0xB7       // SBC-3 5.18
    static let read10: UInt8 = 0x28                 // SBC-3 5.10
    static let write10: UInt8 = 0x2A                // SBC-3 5.32
    static let writeAndVerify10: UInt8 = 0x2E       // SBC-3 5.35
    static let verify10: UInt8 = 0x2F               // SBC-3 5.29
    static let preFetch10: UInt8 = 0x34             // SBC-3 5.8
    static let synchronizeCache10: UInt8 = 0x35     // SBC-3 5.26
    static let writeBuffer: UInt8 = 0x3B
    static let readBuffer: UInt8 = 0x3C
    static let writeSame10: UInt8 = 0x41            // SBC-3 5.41
    static let unmap: UInt8 = 0x42                  // SBC-3 5.28
    static let sanitize: UInt8 = 0x48               // SBC-4 5.25
    static let modeSelect10: UInt8 = 0x55           // SPC-4 6.10
    static let reserve10: UInt8 = 0x56              // SPC-2 7.22
    static let release10: UInt8 = 0x57              // SPC-2 7.17
    static let modeSense10: UInt8 = 0x5A            // SPC-4 6.12
    static let persistentReserveIn: UInt8 = 0x5E    // SPC-4 6.15
    static let persistentReserveOut: UInt8 = 0x5F   // SPC-4 6.16
    static let extendedCopy: UInt8 = 0x83           // SPC-4 6.4 (LID1: service action 00h)
    static let receiveCopyResults: UInt8 = 0x84     // SPC-4 6.18
    static let read16: UInt8 = 0x88                 // SBC-3 5.12
    static let compareAndWrite: UInt8 = 0x89        // SBC-3 5.2
    static let write16: UInt8 = 0x8A                // SBC-3 5.34
    static let orWrite16: UInt8 = 0x8B              // SBC-4 5.9
    static let writeAndVerify16: UInt8 = 0x8E       // SBC-3 5.36
    static let verify16: UInt8 = 0x8F               // SBC-3 5.31
    static let preFetch16: UInt8 = 0x90             // SBC-3 5.9
    static let synchronizeCache16: UInt8 = 0x91     // SBC-3 5.27
    static let writeSame16: UInt8 = 0x93            // SBC-3 5.42
    static let writeAtomic16: UInt8 = 0x9C          // SBC-4 5.48
    static let serviceActionIn16: UInt8 = 0x9E      // SBC-3 READ CAPACITY(16), GET LBA STATUS
    static let reportLuns: UInt8 = 0xA0             // SPC-4 6.33
    static let maintenanceIn: UInt8 = 0xA3          // SPC-4 REPORT SUPPORTED OPCODES / TMFs
    static let read12: UInt8 = 0xA8                 // SBC-3 5.11
    static let write12: UInt8 = 0xAA                // SBC-3 5.33
    static let writeAndVerify12: UInt8 = 0xAE
    static let verify12: UInt8 = 0xAF               // SBC-3 5.30
}

/// Service actions (SPC-4 annex D.3.2).
enum ServiceAction {
    static let readCapacity16: UInt8 = 0x10         // under SERVICE ACTION IN(16)
    static let getLBAStatus: UInt8 = 0x12           // under SERVICE ACTION IN(16)
    static let reportTargetPortGroups: UInt8 = 0x0A // under MAINTENANCE IN (SPC-4 6.36)
    static let reportSupportedOpcodes: UInt8 = 0x0C // under MAINTENANCE IN
    static let reportSupportedTMFs: UInt8 = 0x0D    // under MAINTENANCE IN
}

/// PERSISTENT RESERVE IN service actions (SPC-4 6.15.1 table 166).
enum PRInAction {
    static let readKeys: UInt8 = 0x00
    static let readReservation: UInt8 = 0x01
    static let reportCapabilities: UInt8 = 0x02
    static let readFullStatus: UInt8 = 0x03
}

/// PERSISTENT RESERVE OUT service actions (SPC-4 6.16.1 table 180).
enum PROutAction {
    static let register: UInt8 = 0x00
    static let reserve: UInt8 = 0x01
    static let release: UInt8 = 0x02
    static let clear: UInt8 = 0x03
    static let preempt: UInt8 = 0x04
    static let preemptAndAbort: UInt8 = 0x05
    static let registerAndIgnoreExistingKey: UInt8 = 0x06
    static let registerAndMove: UInt8 = 0x07
}
