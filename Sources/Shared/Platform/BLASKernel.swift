import CBLAS
import Foundation

/// Chooses OpenBLAS's compute kernel for this CPU.
///
/// OpenBLAS picks its kernel once, when the library is loaded, from `OPENBLAS_CORETYPE` or from
/// its own CPU table. Version 0.3.21 (Debian 12) does not know every new CPU and may fall back to a
/// kernel at half the speed the CPU supports (AVX2 where AVX-512 exists); site environments also
/// pin `OPENBLAS_CORETYPE` for older nodes. Because the choice is made before `main` runs, the only
/// way to change it is to set the variable and re-execute the program, which `ensureFastest()`
/// does once, before MPI or anything else starts.
public enum BLASKernel {
    /// Kernels we choose between, slowest first. Names are OpenBLAS core names.
    static let ranking = ["Prescott", "Nehalem", "Sandybridge", "Haswell", "Zen", "SkylakeX", "Cooperlake"]

    /// The kernel OpenBLAS is using in this process.
    public static var current: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// The OpenBLAS library's build configuration string.
    public static var configuration: String {
        guard let cfg = openblas_get_config() else { return "unknown" }
        return String(cString: cfg).trimmingCharacters(in: .whitespaces)
    }

    /// The fastest kernel this CPU can run, from the instruction sets the kernel needs.
    public static func fastestSupported(flags: Set<String> = CPUInfo.flags) -> String? {
        let avx512 = ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"]
        if avx512.allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        if flags.contains("avx") { return "Sandybridge" }
        return nil
    }

    /// Why the current kernel was chosen; shown by `ser info`.
    public static var decision: String {
        let env = ProcessInfo.processInfo.environment
        if let forced = env["SER_BLAS_CORETYPE"] { return "forced by SER_BLAS_CORETYPE=\(forced)" }
        if let original = env["SER_BLAS_INHERITED_CORETYPE"] {
            let was = original.isEmpty ? "OpenBLAS's own detection" : "OPENBLAS_CORETYPE=\(original)"
            return "chosen by ser for this CPU (\(was) would have used a slower kernel)"
        }
        if let pinned = env["OPENBLAS_CORETYPE"] { return "OPENBLAS_CORETYPE=\(pinned) (already the fastest)" }
        return "OpenBLAS's own detection (already the fastest)"
    }

    /// Re-executes the program with the fastest kernel if OpenBLAS loaded a slower one.
    /// `SER_BLAS_CORETYPE` forces a kernel (for comparisons); the re-exec happens at most once.
    public static func ensureFastest() {
        let env = ProcessInfo.processInfo.environment
        if env["SER_BLAS_REEXEC"] != nil { return }
        let wanted: String
        if let forced = env["SER_BLAS_CORETYPE"], !forced.isEmpty {
            wanted = forced
        } else {
            guard let best = fastestSupported() else { return }
            let have = current
            let rank = { (name: String) in ranking.firstIndex { $0.lowercased() == name.lowercased() } ?? -1 }
            if rank(have) >= rank(best) { return }
            wanted = best
        }
        if current.lowercased() == wanted.lowercased() { return }
        setenv("SER_BLAS_INHERITED_CORETYPE", env["OPENBLAS_CORETYPE"] ?? "", 1)
        setenv("OPENBLAS_CORETYPE", wanted, 1)
        setenv("SER_BLAS_REEXEC", "1", 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv only returns on failure: go on with the slower kernel rather than fail the job.
        FileHandle.standardError.write(Data("ser: could not re-execute to select the \(wanted) BLAS kernel (errno \(errno)); continuing with \(current)\n".utf8))
    }

    /// Sets the number of threads OpenBLAS uses for each call.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    public static var threads: Int { Int(openblas_get_num_threads()) }
}

/// CPU facts read from the kernel (Linux), used to pick kernels and report the machine.
public enum CPUInfo {
    public static let flags: Set<String> = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            if let colon = line.firstIndex(of: ":") {
                return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
            }
        }
        return []
    }()

    public static let modelName: String = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }()

    /// Cores this process may run on (its affinity mask, which Slurm and `mpirun --bind-to` set).
    public static var usableCores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
    public static var onlineCores: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}
