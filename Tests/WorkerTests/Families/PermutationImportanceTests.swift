import Foundation
import Shared
import Worker
import XCTest

/// Permutation importance with a model whose dependence on its inputs is known.
final class PermutationImportanceTests: XCTestCase {
    func testOnlyTheFeatureTheModelUsesMatters() {
        // The "model" predicts class 1 when feature 0 is positive; features 1 and 2 are ignored.
        var rng = SeededGenerator(seed: 3)
        var rows: [[Double]] = [], labels: [Int] = []
        for i in 0..<40 {
            let c = i % 2
            rows.append([c == 1 ? 1 + rng.uniform() : -1 - rng.uniform(), rng.normal(), rng.normal()])
            labels.append(c)
        }
        let predict: ([[Double]]) -> [Int] = { m in m.map { $0[0] > 0 ? 1 : 0 } }
        let result = PermutationImportance.compute(rows: rows, labels: labels, classNames: ["a", "b"],
                                                   columns: [("f0", [0]), ("f1", [1]), ("f2", [2]), ("f1+f2", [1, 2])],
                                                   repeats: 10, seed: 1, predict: predict)
        XCTAssertEqual(result.first?.feature, "f0")
        // Shuffling feature 0 leaves about half the files right: UA drops from 1 to about 0.5.
        XCTAssertGreaterThan(result[0].drop, 0.3)
        XCTAssertGreaterThan(result[0].std, 0)
        for r in result.dropFirst() {
            XCTAssertEqual(r.drop, 0)
            XCTAssertEqual(r.std, 0)
        }
        // Same seed, same permutations.
        let again = PermutationImportance.compute(rows: rows, labels: labels, classNames: ["a", "b"],
                                                  columns: [("f0", [0])], repeats: 10, seed: 1, predict: predict)
        XCTAssertEqual(again[0], result[0])
        XCTAssertTrue(PermutationImportance.csv(result).hasPrefix("rank,feature,ua_drop,std\n1,f0,"))
    }
}
