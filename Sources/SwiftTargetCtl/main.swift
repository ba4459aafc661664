print("swift-targetctl: not built yet")
