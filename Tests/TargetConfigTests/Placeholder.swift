import Testing
@testable import TargetConfig
