import Testing
@testable import TargetRuntime
