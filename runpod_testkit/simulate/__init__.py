"""Capacity planning offline (issue 15): traffic inputs for a simulation on a virtual clock."""
