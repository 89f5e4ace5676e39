import ChpkiPlatform
import Foundation

/// Where the controller keeps what each host last installed: `<ca-dir>/installed/<fqdn>.json`, so
/// moving the CA directory (the timer setup's /var/lib/chpki) moves the records with it, and
/// `rotate-ca --finish` finds them without being told.
public enum InstalledRecords {
    public static let directoryName = "installed"

    /// `caDirectory`: the CA directory's path (the command's `Settings.caDirectory`).
    public static func defaultDirectory(caDirectory: String) -> String {
        Path.join(caDirectory, directoryName)
    }
}
