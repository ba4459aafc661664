import Testing
@testable import ISCSIFabric
