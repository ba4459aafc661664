print("swift-targetd")
