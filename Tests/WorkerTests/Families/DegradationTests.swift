import Foundation
import Shared
import Worker
import XCTest

/// The robustness evaluation's degraded audio: the telephone band limit and noise at an SNR,
/// measured with plain DFT sums (independent of the FFT used to filter).
final class DegradationTests: XCTestCase {
    /// Amplitude of the component at DFT bin k of x (a sinusoid of amplitude A at bin k gives A).
    func amplitude(_ x: [Float], bin k: Int) -> Double {
        var re = 0.0, im = 0.0
        let n = Double(x.count)
        for (i, v) in x.enumerated() {
            let a = 2 * Double.pi * Double(k) * Double(i) / n
            re += Double(v) * cos(a)
            im -= Double(v) * sin(a)
        }
        return 2 * (re * re + im * im).squareRoot() / n
    }

    func testTelephoneBandLimitKeepsOnly300To3400Hz() {
        let n = 16384, rate = 16000
        // Bins of exact frequencies k·16000/16384 Hz: 250.0, 351.6, 1000.0, 3398.4, 3500.0, 6000.0 Hz.
        let bins = [256, 360, 1024, 3480, 3584, 6144]
        let inBand = [false, true, true, true, false, false]
        var x = [Float](repeating: 0, count: n)
        for (j, k) in bins.enumerated() {
            for i in 0..<n { x[i] += Float(0.1 * Double(j + 1) * sin(2 * Double.pi * Double(k) * Double(i) / Double(n) + Double(j))) }
        }
        let y = Degradation.bandLimit(x, sampleRate: rate, band: Degradation.telephoneBand)
        XCTAssertEqual(y.count, n)
        for (j, k) in bins.enumerated() {
            let before = amplitude(x, bin: k), after = amplitude(y, bin: k)
            XCTAssertEqual(before, 0.1 * Double(j + 1), accuracy: 1e-5)
            if inBand[j] {
                XCTAssertEqual(after, before, accuracy: 1e-5, "\(Double(k) * 16000 / 16384) Hz kept")
            } else {
                XCTAssertLessThan(after, 1e-6, "\(Double(k) * 16000 / 16384) Hz removed")
            }
        }
        // Energy: what is left is exactly the in-band tones' (amplitude² / 2 each, per sample).
        let energy = y.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(n)
        let expected = bins.indices.filter { inBand[$0] }.reduce(0.0) { $0 + pow(0.1 * Double($1 + 1), 2) / 2 }
        XCTAssertEqual(energy, expected, accuracy: 1e-6)
    }

    func testNoiseIsAddedAtExactlyTheRequestedSNR() {
        let x = (0..<20000).map { Float(0.3 * sin(Double($0) * 0.3)) }   // 764 Hz: inside the telephone band
        for snr in [20.0, 10, 0, -5] {
            var rng = SeededGenerator(seed: 12)
            let y = Degradation.addNoise(x, snr: snr, rng: &rng)
            let ps = x.reduce(0.0) { $0 + Double($1) * Double($1) }
            let pn = zip(y, x).reduce(0.0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) }
            XCTAssertEqual(10 * log10(ps / pn), snr, accuracy: 1e-4)
            // White: the noise averages to ~0 and is uncorrelated with the signal.
            let mean = zip(y, x).reduce(0.0) { $0 + Double($1.0) - Double($1.1) } / Double(x.count)
            XCTAssertLessThan(abs(mean), 0.05 * (pn / Double(x.count)).squareRoot())
            var again = SeededGenerator(seed: 12)
            XCTAssertEqual(Degradation.addNoise(x, snr: snr, rng: &again), y, "same generator, same noise")
        }
        // Both: the SNR is measured against the band-limited signal.
        let d = Degradation(band: Degradation.telephoneBand, snr: 10)
        XCTAssertEqual(d.name, "telephone band 300–3400 Hz, white noise at 10 dB SNR")
        var rng = SeededGenerator(seed: 1)
        let y = d.apply(x, sampleRate: 16000, rng: &rng)
        let band = Degradation.bandLimit(x, sampleRate: 16000, band: Degradation.telephoneBand)
        let ps = band.reduce(0.0) { $0 + Double($1) * Double($1) }
        let pn = zip(y, band).reduce(0.0) { $0 + pow(Double($1.0) - Double($1.1), 2) }
        XCTAssertEqual(10 * log10(ps / pn), 10, accuracy: 1e-4)
    }
}
