import Shared
import XCTest

final class SplitTests: XCTestCase {
    func testRandomSplitIsStratifiedSeededAndComplete() {
        // 40/20/27/13 files of four labels, shuffled.
        var labels = Array(repeating: 0, count: 40) + Array(repeating: 1, count: 20) + Array(repeating: 2, count: 27) + Array(repeating: 3, count: 13)
        var g = SeededGenerator(seed: 5)
        labels.seededShuffle(using: &g)
        let s = SplitMaker.random(labels: labels, fraction: 0.15, seed: 1)
        XCTAssertEqual(Set(s.train).intersection(s.test), [])
        XCTAssertEqual((s.train + s.test).sorted(), Array(labels.indices))
        // round(0.15 n) per label: 6, 3, 4, 2.
        for (label, expect) in [(0, 6), (1, 3), (2, 4), (3, 2)] {
            XCTAssertEqual(s.test.filter { labels[$0] == label }.count, expect, "label \(label)")
        }
        XCTAssertEqual(SplitMaker.random(labels: labels, fraction: 0.15, seed: 1), s)
        XCTAssertNotEqual(SplitMaker.random(labels: labels, fraction: 0.15, seed: 2).test, s.test)
    }

    func testSpeakerSplitHoldsOutWholeSpeakersWithEveryClass() throws {
        var labels: [Int] = [], speakers: [String] = []
        for sp in 0..<8 { for l in 0..<4 { for _ in 0..<(3 + sp % 3) { labels.append(l); speakers.append("c:s\(sp)") } } }
        let s = try SplitMaker.speaker(labels: labels, speakers: speakers, fraction: 0.15, seed: 1, given: nil)
        let testSpeakers = Set(s.test.map { speakers[$0] }), trainSpeakers = Set(s.train.map { speakers[$0] })
        XCTAssertEqual(testSpeakers.intersection(trainSpeakers), [])
        XCTAssertEqual(testSpeakers, Set(s.testSpeakers ?? []))
        XCTAssertEqual(Set(s.test.map { labels[$0] }), [0, 1, 2, 3])
        XCTAssertEqual(Double(s.test.count) / Double(labels.count), 0.15, accuracy: 0.08)
        XCTAssertEqual(try SplitMaker.speaker(labels: labels, speakers: speakers, fraction: 0.15, seed: 1, given: nil), s)
        let given = try SplitMaker.speaker(labels: labels, speakers: speakers, fraction: 0.15, seed: 1, given: ["s3", "c:s5"])
        XCTAssertEqual(given.testSpeakers, ["c:s3", "c:s5"])
        XCTAssertEqual(Set(given.test.map { speakers[$0] }), ["c:s3", "c:s5"])
        XCTAssertThrowsError(try SplitMaker.speaker(labels: labels, speakers: speakers, fraction: 0.15, seed: 1, given: ["nobody"])) {
            XCTAssertTrue("\($0)".contains("'nobody' is not a speaker"), "\($0)")
        }
    }
}
