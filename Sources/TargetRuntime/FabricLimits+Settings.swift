import ISCSIFabric
import NIOCore
import TargetConfig

extension FabricLimits {
    /// The fabric's limits from the configuration's `limits` (absent fields keep the fabric's
    /// defaults, which `LimitSettings.defaults` restates for display; a test keeps them equal).
    public init(_ settings: LimitSettings) {
        self.init()
        let s = settings
        if let v = s.chapFreeFailures { chapFreeFailures = v }
        if let v = s.chapDelaySeconds { chapBaseDelay = .nanoseconds(Int64(v * 1e9)) }
        if let v = s.chapMaxDelaySeconds { chapMaxDelay = .nanoseconds(Int64(v * 1e9)) }
        if let v = s.maxLoginsPerAddress { maxLoginsPerAddress = v }
        if let v = s.maxLogins { maxLoginsTotal = v }
        if let v = s.maxBufferedWriteMB { maxBufferedWriteBytesPerSession = v << 20 }
        if let v = s.failedLoginLogLines { failedLoginLogLinesPerMinute = v }
    }
}
