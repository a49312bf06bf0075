import CBLAS
import CFFTW
import CMPI
import CPNG
import CSampleRate
import CSndFile
import Foundation

/// Versions of the native libraries this build runs on (shown by `ser info`, stored in manifests).
public enum NativeLibraries {
    public static var mpi: String {
        var buf = [CChar](repeating: 0, count: 8192)
        var len: Int32 = 0
        MPI_Get_library_version(&buf, &len)
        return String(cString: buf).split(separator: "\n").first.map { $0.replacingOccurrences(of: ",", with: "") } ?? "unknown"
    }

    public static var openBLAS: String { BLASKernel.configuration }
    public static var fftw: String { String(cString: ser_fftwf_version()) }
    public static var sndfile: String { String(cString: sf_version_string()) }
    public static var zstd: String { "zstd " + Zstd.version }
    public static var samplerate: String { String(cString: src_get_version()) }
    public static var png: String { "libpng " + String(cString: png_get_libpng_ver(nil)) }

    public static var all: [(String, String)] {
        [("MPI", mpi), ("BLAS", openBLAS), ("FFT", fftw), ("audio I/O", sndfile),
         ("resampler", samplerate), ("compression", zstd), ("images", png)]
    }
}
