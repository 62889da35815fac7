using System.Runtime.Versioning;

// The store relies on Unix file modes, flock(2) and O_NOFOLLOW: crsc runs on Linux nodes only.
[assembly: SupportedOSPlatform("linux")]
