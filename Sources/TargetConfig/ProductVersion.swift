/// The release both binaries report (`--version`).
public enum ProductVersion {
    public static let current = "0.11.0"
}
