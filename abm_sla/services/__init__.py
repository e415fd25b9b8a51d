"""Application services: stages that read and write the warehouse, reports, exports, the demo.
"""
