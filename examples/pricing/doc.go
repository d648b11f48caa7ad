// Package pricing is the demo of the quickstart: a legacy and a candidate
// implementation of examples.pricing.v1.PricingService, with the
// discrepancies a real rewrite has, the traffic to find them, and the
// parallel run configuration a team would write for it.
//
// The candidate ([Candidate]) differs from the legacy service ([Legacy]) on
// purpose:
//
//   - a rounding bug: it truncates discounts to the cent where the legacy
//     service rounds half up, so some discounted SKUs cost a cent more;
//   - a field filled differently: it writes the "gold" tier in lower case;
//   - a reordered list: it lists the garden category by price, not by SKU;
//   - a differently worded error: "unknown SKU" instead of "sku not found".
//
// Both also differ on every call in ways that do not matter, a generated
// quote ID and a timestamp, which [MethodOptions] ignores.
package pricing
