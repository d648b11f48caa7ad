package pricing

import "fmt"

// Catalog size and categories: SKU-000 to SKU-099, four categories.
const catalogSize = 100

var categories = []string{"kitchen", "garden", "toys", "books"}

// Categories are the categories of the catalog.
func Categories() []string { return append([]string(nil), categories...) }

// SKU is the name of catalog item n.
func SKU(n int) string { return fmt.Sprintf("SKU-%03d", n) }

// item is one catalog entry, prices in nanos of a euro.
type item struct {
	sku      string
	category string
	price    int64 // nanos
	discount bool  // 7.5 % off
}

var catalog = func() map[string]item {
	c := make(map[string]item, catalogSize)
	for n := range catalogSize {
		c[SKU(n)] = item{
			sku:      SKU(n),
			category: categories[n%len(categories)],
			// Prices in whole cents, spread between 1 and 100 euros.
			price:    int64(100+(n*7919)%9900) * 10_000_000,
			discount: n%10 == 0,
		}
	}
	return c
}()

// discount is 7.5 % of price, in nanos, rounded to the cent by round.
func discount(price int64, round func(nanos int64) int64) int64 {
	return round(price * 75 / 1000)
}

// roundHalfUp rounds nanos to the cent, halves up: the legacy rule.
func roundHalfUp(nanos int64) int64 { return (nanos + 5_000_000) / 10_000_000 * 10_000_000 }

// truncate drops what is below the cent: the candidate's bug.
func truncate(nanos int64) int64 { return nanos / 10_000_000 * 10_000_000 }
