import Testing
@testable import TCMU
