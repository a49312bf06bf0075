import Foundation
import Shared
import TestSupport
import Worker
import XCTest

/// `ser train --model ae|dae|resnet-se` and `ser embed` as users run them: alone, under
/// `mpirun -np 2`, interrupted and resumed, with cross-corpus and degraded evaluations.
final class FamiliesCommandTests: XCTestCase {
    /// A synthetic corpus preprocessed into a store of `shards` shards.
    func makeStore(_ dir: String, name: String, seed: Int, filesPerClass: Int = 30, shards: Int = 4) throws -> String {
        var r = try Command.ser(["synth", "--out", "\(dir)/\(name)-audio", "--files-per-class", String(filesPerClass),
                                 "--speakers", "4", "--duration", "2", "--seed", String(seed)])
        XCTAssertEqual(r.status, 0, r.output)
        r = try Command.ser(["preprocess", "--corpus", "synth:\(dir)/\(name)-audio", "--out", "\(dir)/\(name)", "--shards", String(shards), "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        return "\(dir)/\(name)"
    }

    func evaluation(_ run: String) throws -> FamilyEvaluation {
        try JSONDecoder().decode(FamilyEvaluation.self, from: Data(contentsOf: URL(fileURLWithPath: run + "/evaluation.json")))
    }

    func assertSameTensors(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try SafeTensors.read(path: a + "/weights.safetensors"), y = try SafeTensors.read(path: b + "/weights.safetensors")
        XCTAssertEqual(x.tensors.keys.sorted(), y.tensors.keys.sorted(), file: file, line: line)
        for (k, t) in x.tensors { XCTAssertEqual(t.data, y.tensors[k]?.data, "\(k) differs", file: file, line: line) }
    }

    func metrics(_ run: String) throws -> [[String: Any]] {
        try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    func testAutoencoderIsBitwiseTheSameOnOneAndTwoRanks() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let store = try makeStore(dir, name: "a", seed: 3)
        let args = ["train", "--model", "ae", "--features", store, "--epochs", "12", "--batch", "32", "--latent", "8", "--importance-repeats", "2"]
        var r = try Command.ser(args + ["--out", dir + "/r1"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("held-out files (random split)"), r.stdout)
        r = try Command.mpirun(2, args + ["--out", dir + "/r2"])
        XCTAssertEqual(r.status, 0, r.output)
        // Fixed chunks summed along a fixed tree: the ranks change nothing, bit for bit.
        try assertSameTensors(dir + "/r1", dir + "/r2")

        let e = try evaluation(dir + "/r1")
        let s = try FeatureStore.open(store)
        XCTAssertEqual(e.family, .ae)
        XCTAssertEqual(e.files.total, s.split(.random).test.count)
        XCTAssertEqual(e.importance?.count, 256)
        XCTAssertEqual(Set(e.groupImportance?.map(\.feature) ?? []), Set(UtteranceFeatures.groups))
        XCTAssertNotNil(e.reconstructionMSE)
        XCTAssertGreaterThan(e.files.unweightedAccuracy, 0.5, "well above the 0.25 of chance on the synthetic corpus")
        let m = try metrics(dir + "/r1")
        XCTAssertEqual(m.count, 12)
        let first = m.first!["train_loss"] as! Double, last = m.last!["train_loss"] as! Double
        XCTAssertLessThan(last, 0.7 * first)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/r1/config.json"))) as! [String: Any]
        XCTAssertEqual(config["family"] as? String, "ae")
        XCTAssertEqual((config["inputFeatures"] as? [String])?.first, "mean_mel_00")
        for f in ["importance.csv", "importance-groups.csv", "importance.svg", "importance-groups.svg", "weights.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/r1/\(f)"), f)
        }
    }

    func testDenoisingAutoencoderAcrossCorporaDegradedAndResumed() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let a = try makeStore(dir, name: "a", seed: 3), b = try makeStore(dir, name: "b", seed: 11, filesPerClass: 10)
        let args = ["train", "--model", "dae", "--features", a, "--test-features", b, "--degrade", "telephone", "--snr", "10",
                    "--epochs", "4", "--batch", "32", "--importance-repeats", "1"]
        var r = try Command.ser(args + ["--out", dir + "/whole"])
        XCTAssertEqual(r.status, 0, r.output)
        let e = try evaluation(dir + "/whole")
        XCTAssertEqual(e.family, .dae)
        XCTAssertEqual(e.crossCorpus?.files.total, 40, "every file of the second corpus")
        XCTAssertEqual(e.crossCorpus?.store, b)
        XCTAssertEqual(e.degraded?.files.total, e.files.total)
        XCTAssertEqual(e.degraded?.name, "telephone band 300–3400 Hz, white noise at 10 dB SNR")
        XCTAssertTrue(r.stdout.contains("cross-corpus") && r.stdout.contains("degraded"), r.stdout)

        // Interrupted after 5 steps, then resumed: the same weights as the uninterrupted run.
        r = try Command.ser(args + ["--out", dir + "/parts", "--max-steps", "5"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("stopped at step 5"), r.stderr)
        r = try Command.ser(args + ["--out", dir + "/parts"])
        XCTAssertNotEqual(r.status, 0, "a second run into the same directory is refused")
        XCTAssertTrue(r.stderr.contains("--resume"), r.stderr)
        r = try Command.ser(["train", "--resume", dir + "/parts"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("resuming from"), r.stderr)
        try assertSameTensors(dir + "/whole", dir + "/parts")
        // A finished run can be given more epochs.
        r = try Command.ser(["train", "--resume", dir + "/parts", "--epochs", "6"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try metrics(dir + "/parts").last?["epoch"] as? Int, 6)

        // The degraded evaluation re-reads the audio: a moved corpus is named, and the trained
        // weights are kept.
        try FileManager.default.moveItem(atPath: dir + "/a-audio", toPath: dir + "/a-audio-moved")
        r = try Command.ser(["train", "--model", "dae", "--features", a, "--degrade", "telephone", "--epochs", "1", "--out", dir + "/moved"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("not found; the degraded evaluation reads the test files' audio again"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/moved/weights.safetensors"))
    }

    func testResNetSEVerifiesClassifiesAndRunsUnderMPI() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let store = try makeStore(dir, name: "a", seed: 5)
        let args = ["train", "--model", "resnet-se", "--features", store, "--width", "0.25", "--blocks", "1,1,1,1", "--embedding", "16",
                    "--episode-utterances", "3", "--epochs", "2", "--loss", "softmax-angproto", "--seed", "4"]
        var r = try Command.ser(args + ["--out", dir + "/one"])
        XCTAssertEqual(r.status, 0, r.output)
        let e = try evaluation(dir + "/one")
        let v = try XCTUnwrap(e.verification)
        XCTAssertTrue(v.eer >= 0 && v.eer <= 1)
        let n = e.files.total
        XCTAssertEqual(v.trials, n * (n - 1) / 2)
        XCTAssertTrue(v.accepted)
        XCTAssertEqual(Set(e.classifiers.keys), ["logistic-regression", "nearest-centroid"])
        XCTAssertEqual(e.files, e.classifiers["logistic-regression"])
        XCTAssertEqual(try metrics(dir + "/one").count, 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/one/logistic-regression.json"))

        // Two ranks: each draws its own episodes; the run completes with the same outputs.
        r = try Command.mpirun(2, args + ["--out", dir + "/two"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("on each of 2 rank(s)"), r.stderr)
        XCTAssertNotNil(try evaluation(dir + "/two").verification)
        // Same seed and ranks: the same run again, bit for bit.
        r = try Command.mpirun(2, args + ["--out", dir + "/two-again"])
        XCTAssertEqual(r.status, 0, r.output)
        try assertSameTensors(dir + "/two", dir + "/two-again")

        // An impossible acceptance threshold: the run is kept but rejected with status 3.
        r = try Command.ser(args + ["--out", dir + "/strict", "--eer-threshold", "0.000001", "--epochs", "1"])
        XCTAssertEqual(r.status, 3, r.output)
        XCTAssertTrue(r.stderr.contains("model rejected"), r.stderr)
        XCTAssertEqual(try evaluation(dir + "/strict").verification?.accepted, false)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/strict/weights.safetensors"))
    }

    func testEmbedWritesProjectionsAndSilhouettesOnAnyNumberOfRanks() throws {
        let dir = TestEnv.temporaryDirectory(self)
        let a = try makeStore(dir, name: "a", seed: 3), b = try makeStore(dir, name: "b", seed: 11, filesPerClass: 10)
        var r = try Command.ser(["train", "--model", "ae", "--features", a, "--out", dir + "/run", "--epochs", "10", "--batch", "32",
                                 "--importance-repeats", "0"])
        XCTAssertEqual(r.status, 0, r.output)
        let embed = ["embed", dir + "/run", "--split", "all", "--features", a, "--features", b, "--tsne-iterations", "300"]
        r = try Command.ser(embed + ["--out", dir + "/e1"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("silhouette"), r.stdout)
        for f in ["embeddings.csv", "projection.csv", "pca-emotion.svg", "pca-corpus.svg", "tsne-emotion.svg", "tsne-corpus.svg", "silhouette.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/e1/\(f)"), f)
        }
        let csv = try String(contentsOfFile: dir + "/e1/embeddings.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 1 + 120 + 40)
        XCTAssertEqual(csv[0].split(separator: ",").count, 7 + 16)
        let summary = try JSONDecoder().decode(EmbedSummary.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/e1/silhouette.json")))
        XCTAssertEqual(summary.corpora.count, 2)
        XCTAssertEqual(summary.utterances, 160)
        let latent = try XCTUnwrap(summary.silhouette["latent"])
        XCTAssertNotNil(latent.emotion)
        XCTAssertNotNil(latent.corpus)
        XCTAssertNotNil(summary.silhouette["tsne"])
        // Two ranks compute the vectors of their own shards; rank 0 writes the same files.
        r = try Command.mpirun(2, embed + ["--out", dir + "/e2"])
        XCTAssertEqual(r.status, 0, r.output)
        for f in ["embeddings.csv", "projection.csv", "silhouette.json"] {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/e1/\(f)")), try Data(contentsOf: URL(fileURLWithPath: "\(dir)/e2/\(f)")), f)
        }
        // One corpus: the silhouette by corpus is undefined, and says so.
        r = try Command.ser(["embed", dir + "/run", "--out", dir + "/e3", "--no-tsne"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("one corpus only"), r.stdout)
    }

    func testFamilyOptionsAreCheckedBeforeAnyWork() throws {
        let dir = TestEnv.temporaryDirectory(self)
        try FileManager.default.createDirectory(atPath: dir + "/store", withIntermediateDirectories: true)
        let base = ["train", "--features", dir + "/store", "--out", dir + "/run"]
        let cases: [([String], String)] = [
            (["--latent", "8"], "--latent applies to the model families"),
            (["--model", "resnet-se", "--latent", "8"], "--latent applies to --model ae/dae"),
            (["--model", "ae", "--noise", "0.2"], "--noise applies to --model dae"),
            (["--model", "ae", "--blocks", "2,2"], "--blocks applies to --model resnet-se"),
            (["--model", "resnet-se", "--blocks", "2,2"], "--blocks needs four positive numbers"),
            (["--model", "resnet-se", "--loss", "triplet"], "--loss must be angproto or softmax-angproto"),
            (["--model", "dae", "--degrade", "radio"], "--degrade must be telephone or none"),
            (["--model", "ae", "--freeze-yamnet"], "--freeze-yamnet applies to fusion-v1"),
            (["--model", "vae"], "--model must be one of fusion-v1, vggish-only, yamnet-only, ae, dae, resnet-se"),
            (["--model", "ae", "--test-features", dir + "/nothere"], "--test-features \(dir)/nothere: no such file"),
        ]
        for (extra, message) in cases {
            let r = try Command.ser(base + extra)
            XCTAssertNotEqual(r.status, 0, extra.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(message), "\(extra): \(r.stderr)")
        }
        // A directory that is not a family run.
        let r = try Command.ser(["embed", dir + "/store", "--out", dir + "/e"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("config.json: not found"), r.stderr)
    }
}
