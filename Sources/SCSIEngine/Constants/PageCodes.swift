/// VPD page codes (SPC-4 7.8, SBC-3 6.5).
enum VPDPage {
    static let supportedPages: UInt8 = 0x00
    static let unitSerialNumber: UInt8 = 0x80
    static let deviceIdentification: UInt8 = 0x83
    static let thirdPartyCopy: UInt8 = 0x8F
    static let blockLimits: UInt8 = 0xB0
    static let blockDeviceCharacteristics: UInt8 = 0xB1
    static let logicalBlockProvisioning: UInt8 = 0xB2
    static let all: [UInt8] = [supportedPages, unitSerialNumber, deviceIdentification, thirdPartyCopy,
                               blockLimits, blockDeviceCharacteristics, logicalBlockProvisioning]
}

/// Mode page codes (SPC-4 7.5, SBC-3 6.4).
enum ModePageCode {
    static let caching: UInt8 = 0x08               // SBC-3 6.4.5
    static let control: UInt8 = 0x0A               // SPC-4 7.5.7
    static let informationalExceptions: UInt8 = 0x1C // SPC-4 7.5.11 (SBC-3 6.4.8)
    static let allPages: UInt8 = 0x3F
}

/// Identifier building blocks (SPC-4 7.8.6.6.5, NAA IEEE Registered Extended).
enum IdentifierConstants {
    /// The company ID in the NAA 6 designator. No OUI is registered for the project yet;
    /// replace this when one is. The LU's `uniqueID` alone keeps designators distinct.
    static let ieeeOUI: UInt32 = 0x00_0000
}

/// Limits this engine advertises in VPD 0xB0 (SBC-3 6.5.3) and enforces.
enum EngineLimits {
    /// Maximum transfer length in blocks for READ/WRITE (also the B0 maximum).
    static let maxTransferBlocks: UInt32 = 0x1_0000
    static let optimalTransferBlocks: UInt32 = 0x800
    static let maxUnmapLBACount: UInt32 = 0x10_0000
    static let maxUnmapDescriptors: UInt32 = 256
    static let maxWriteSameBlocks: UInt64 = 0x40_0000
    static let maxCompareAndWriteBlocks: UInt8 = 255
    /// Registrations per LU (PR); beyond it REGISTER answers 05/5504.
    static let maxRegistrations = 1024
}
