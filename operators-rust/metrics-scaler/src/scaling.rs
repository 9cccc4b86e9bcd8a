//! The scaling rule: how many replicas a metric value asks for.

/// `ceil(max(current, 1) * value / target)` in 64-bit floating point, in exactly that order (so
/// every implementation rounds alike), then clamped to `[min, max]`; `max` wins when the two
/// cross. `target` must be positive.
pub fn desired_replicas(current: i32, value: f64, target: f64, min: i32, max: i32) -> i32 {
    let mut desired = (f64::from(current.max(1)) * value / target).ceil();
    if desired < f64::from(min) {
        desired = f64::from(min);
    }
    if desired > f64::from(max) {
        desired = f64::from(max);
    }
    // Within [min, max] after clamping, hence within i32.
    desired as i32
}

#[cfg(test)]
mod tests {
    use super::desired_replicas;

    #[test]
    fn scales_in_proportion_to_the_value_and_rounds_up() {
        assert_eq!(desired_replicas(2, 150.0, 100.0, 1, 10), 3);
        assert_eq!(desired_replicas(4, 50.0, 100.0, 1, 10), 2);
        assert_eq!(desired_replicas(3, 100.0, 100.0, 1, 10), 3);
        assert_eq!(desired_replicas(3, 101.0, 100.0, 1, 10), 4);
    }

    #[test]
    fn zero_current_replicas_count_as_one() {
        assert_eq!(desired_replicas(0, 250.0, 100.0, 0, 10), 3);
        assert_eq!(desired_replicas(0, 0.0, 100.0, 0, 10), 0);
    }

    #[test]
    fn the_result_is_clamped_with_max_winning() {
        assert_eq!(
            desired_replicas(2, 1e300, 1e-300, 1, 7),
            7,
            "infinity clamps to max"
        );
        assert_eq!(
            desired_replicas(5, -40.0, 100.0, 2, 10),
            2,
            "negative values clamp to min"
        );
        assert_eq!(desired_replicas(5, 0.0, 1.0, 4, 3), 3, "max wins over min");
    }

    #[test]
    fn the_order_of_operations_is_the_specified_one() {
        // 3 * 0.1 / 0.1 = 3.0000000000000004, which rounds up to 4; 3 * (0.1 / 0.1) would be 3.
        assert_eq!(desired_replicas(3, 0.1, 0.1, 1, 10), 4);
    }
}
